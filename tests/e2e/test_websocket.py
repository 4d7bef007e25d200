"""WebSocket upgrades on a vendor host reach the provider's base URL with the pooled credential swapped in."""

import asyncio
import json
import threading

import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

pytestmark = pytest.mark.e2e


class EchoServer:
    """A WebSocket server on 127.0.0.1 that echoes messages and records each handshake."""

    def __init__(self) -> None:
        self.handshakes: list[tuple[str, dict]] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        async def handler(ws):
            self.handshakes.append((ws.request.path, dict(ws.request.headers)))
            async for message in ws:
                await ws.send(json.dumps({"echo": json.loads(message)}))

        self.server = await serve(handler, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def echo_server():
    server = EchoServer()
    yield server
    server.stop()


def test_responses_websocket_reaches_the_provider_with_a_pooled_key(rotator, echo_server):
    proxy = rotator(providers={"openai": {"base_url": f"http://127.0.0.1:{echo_server.port}/v1"}}, fresh=True)

    async def talk():
        async with connect(
            "wss://api.openai.com/v1/responses",
            additional_headers={"Authorization": "Bearer sk-client-placeholder"},
            proxy=proxy.env["HTTPS_PROXY"],
            open_timeout=10,
        ) as ws:
            await ws.send(json.dumps({"type": "response.create", "model": "gpt-4o-mini"}))
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    reply = asyncio.run(talk())
    assert reply == {"echo": {"type": "response.create", "model": "gpt-4o-mini"}}
    path, headers = echo_server.handshakes[0]
    assert path == "/v1/responses"
    assert headers["authorization"] == "Bearer sk-pool-1"
    assert "sk-pool-1" not in proxy.log

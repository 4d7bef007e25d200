"""What a passed-through WebSocket's upstream handshake leaves in the logs: never the pooled key.

mitmproxy runs with the root logger at DEBUG (mitmproxy/tools/main.py) and mitmweb's event log keeps every record,
debug ones included; the websockets library logs each handshake header line at DEBUG when its logger allows it.
"""

from __future__ import annotations

import logging

from websockets.asyncio.server import serve

from rewrite.config import StreamingConfig, parse
from rewrite.exchange.job import Job
from rewrite.exchange.websocket import SocketJob, open_upstream
from rewrite.lifecycle.setting import Setting
from rewrite.routing.router import Route, Router
from rewrite.upstream import client as upstream_client

POOLED_KEY = "sk-pool-secret-0123456789"
VENDOR = "tests.vendor"  # the stand-in provider's own records: not Rotator's


async def _accept(ws) -> None:
    await ws.wait_closed()


async def test_the_upstream_handshake_logs_no_pooled_key_at_debug(caplog):
    caplog.set_level(logging.DEBUG)  # (the root logger, as mitmproxy sets it)
    async with serve(_accept, "127.0.0.1", 0, logger=logging.getLogger(VENDOR)) as server:
        port = server.sockets[0].getsockname()[1]
        provider = Router(parse(f"providers: {{openai: {{base_url: 'http://127.0.0.1:{port}/v1', "
                                f"keys: [{POOLED_KEY}]}}}}")).provider_named("openai")
        sj = SocketJob(Job("job-0001", Route(provider, None), provider), [("authorization", "Bearer sk-c")],
                       "/v1/responses")
        assert await open_upstream(sj, StreamingConfig(first_token_timeout=5), upstream_client.Upstream(), Setting()) is None
        [conn] = server.connections
        assert conn.request.headers["authorization"] == f"Bearer {POOLED_KEY}"  # (the pooled key went upstream)
        await sj.upstream.send("hi")
        await sj.upstream.close()
        await sj.release()
    assert not [r.getMessage() for r in caplog.records if r.name != VENDOR and POOLED_KEY in r.getMessage()]

"""mitmdump at `termlog_verbosity=debug` (what mitmweb's event log shows: mitmproxy runs the root logger at DEBUG):
every library's DEBUG records reach it, and none may hold a pooled key, for HTTP calls of each protocol (retried
on the next key too) and a passed-through WebSocket."""

from __future__ import annotations

import asyncio
import json
import ssl

import pytest
from websockets.asyncio.client import connect

from tests.support.clients import call, make_client
from tests.support.fake_vendor import Fault
from tests.support.fake_vendor_ws import FakeWebSocketVendor
from tests.support.harness import POOL_KEYS

pytestmark = pytest.mark.e2e

POOLED = [key for keys in POOL_KEYS.values() for key in keys]


def test_no_pooled_key_in_the_debug_log(fake_vendor, rotator):
    ws_vendor = FakeWebSocketVendor().start()
    try:
        proxy = rotator({"providers": {"openai": {"base_url": f"{ws_vendor.url}/v1"}}}, fresh=True,
                        args=("--set", "termlog_verbosity=debug"))
        tls = ssl.create_default_context(cafile=str(proxy.ca_cert))

        async def echo() -> dict:
            async with connect("wss://api.openai.com/v1/realtime?model=gpt-realtime", proxy=proxy.url, ssl=tls,
                               additional_headers={"Authorization": "Bearer sk-client"}, open_timeout=15) as ws:
                await ws.send(json.dumps({"hello": "world"}))
                return json.loads(await asyncio.wait_for(ws.recv(), 10))

        assert asyncio.run(echo()) == {"echo": {"hello": "world"}}
        assert ws_vendor.wait_for(1)[0].credential in POOL_KEYS["openai"]
        logs = [proxy.full_log]
    finally:
        ws_vendor.stop()
    proxy = rotator(fresh=True, args=("--set", "termlog_verbosity=debug"))
    fake_vendor.script(Fault.status(429), Fault.ok(), Fault.status(401), Fault.ok())
    for protocol in ("anthropic", "gemini"):
        call(protocol, make_client(protocol), stream=True)
    fake_vendor.wait_for(4)
    logs.append(proxy.full_log)
    assert all("client connect" in log for log in logs)  # (DEBUG records are there)
    assert not [key for key in POOLED for log in logs if key in log]

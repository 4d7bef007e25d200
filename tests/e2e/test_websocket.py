"""WebSocket upgrades on a vendor host, through a real mitmdump: the Responses API is downgraded to HTTPS by
default (`websocket: downgrade`), other upgrades and `websocket: pass` reach the provider with a pooled key, and a
handshake that stalls or is refused is retried on the next key. No flow ever holds a pooled or client key."""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from mitmproxy import io as flow_io
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.clients import call, make_client
from tests.support.egress_proxy import ConnectProxy, TLSFront
from tests.support.fake_vendor import TEXT
from tests.support.fake_vendor_ws import FakeWebSocketVendor, WsFault
from tests.support.harness import Rotator
from tests.support.reliability import FIRST_TOKEN_TIMEOUT
from tests.support.timing import MARGIN

pytestmark = pytest.mark.e2e

POOL = ["sk-pool-1", "sk-pool-2", "sk-pool-3"]


@pytest.fixture(scope="session")
def _ws_vendor_server() -> Iterator[FakeWebSocketVendor]:
    vendor = FakeWebSocketVendor().start()
    yield vendor
    vendor.stop()


@pytest.fixture
def ws_vendor(_ws_vendor_server: FakeWebSocketVendor) -> Iterator[FakeWebSocketVendor]:
    _ws_vendor_server.reset()
    yield _ws_vendor_server
    _ws_vendor_server.reset()


def on_ws_vendor(ws_vendor: FakeWebSocketVendor, mode: str = "downgrade", **streaming) -> dict:
    """Config sections: OpenAI pointed at the fake WebSocket vendor."""
    return {
        "providers": {"openai": {"base_url": f"{ws_vendor.url}/v1"}},
        "websocket": mode,
        "streaming": streaming,
    }


async def open_socket(proxy: Rotator, path: str, timeout: float = 15.0):
    """A WebSocket to api.openai.com through the proxy, as a client with HTTPS_PROXY and the CA would open it."""
    tls = ssl.create_default_context(cafile=str(proxy.ca_cert))
    return await connect(
        f"wss://api.openai.com{path}",
        additional_headers={"Authorization": "Bearer sk-client-placeholder", "OpenAI-Beta": "responses_websockets=2026-02-06"},
        proxy=proxy.url,
        ssl=tls,
        open_timeout=timeout,
    )


async def echo_once(proxy: Rotator, path: str, timeout: float = 15.0) -> dict:
    async with await open_socket(proxy, path, timeout) as ws:
        await ws.send(json.dumps({"hello": "world"}))
        return json.loads(await asyncio.wait_for(ws.recv(), 10))


def refusal(proxy: Rotator, path: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as e:
        asyncio.run(echo_once(proxy, path))
    return e.value


def saved_flows(path) -> list:
    with open(path, "rb") as f:
        return list(flow_io.FlowReader(f).stream())


# --- downgrade (the default)


def test_responses_websocket_is_answered_426_and_the_flow_says_why(rotator, fake_vendor, tmp_path):
    flows = tmp_path / "flows"
    proxy = rotator(fresh=True, args=("-w", str(flows)))

    err = refusal(proxy, "/v1/responses")
    assert err.response.status_code == 426
    assert b"HTTPS" in err.response.body and b"websocket: pass" in err.response.body
    assert fake_vendor.requests == []  # nothing went upstream
    proxy.wait_log("downgraded")

    proxy.proc.stop()
    [flow] = [f for f in saved_flows(flows) if f.request.path == "/v1/responses"]
    assert flow.request.pretty_host == "api.openai.com"
    assert flow.response.status_code == 426
    assert "426" in flow.comment and "HTTPS POST" in flow.comment
    assert flow.metadata["rotator"]["events"][0]["kind"] == "downgraded"
    assert b"sk-client-placeholder" not in flows.read_bytes()  # the client's own key is masked too


def test_realtime_websocket_is_never_downgraded(rotator, ws_vendor):
    proxy = rotator(on_ws_vendor(ws_vendor), fresh=True)

    assert asyncio.run(echo_once(proxy, "/v1/realtime?model=gpt-realtime")) == {"echo": {"hello": "world"}}
    [hs] = ws_vendor.wait_for(1)
    assert (hs.path, hs.query) == ("/v1/realtime", "model=gpt-realtime")
    assert hs.credential == "sk-pool-1"
    assert hs.headers["openai-beta"] == "responses_websockets=2026-02-06"  # the client's headers go along
    assert "sk-pool-1" not in proxy.log


def test_a_passed_upgrade_carries_the_pooled_keys_own_organization(rotator, ws_vendor):
    keys = [{"key": "sk-pool-1", "organization": "org-of-the-pool"}]
    proxy = rotator(on_ws_vendor(ws_vendor), providers={"openai": {"keys": keys}})

    async def talk() -> None:
        tls = ssl.create_default_context(cafile=str(proxy.ca_cert))
        headers = {"Authorization": "Bearer sk-client-placeholder", "OpenAI-Organization": "org-of-the-client"}
        async with connect("wss://api.openai.com/v1/realtime", additional_headers=headers, proxy=proxy.url, ssl=tls,
                           open_timeout=15):
            pass

    asyncio.run(talk())
    [hs] = ws_vendor.wait_for(1)
    assert (hs.credential, hs.headers["openai-organization"]) == ("sk-pool-1", "org-of-the-pool")


def test_gemini_live_websocket_passes_with_a_pooled_key_in_its_header(rotator, ws_vendor, tmp_path):
    flows = tmp_path / "flows"
    proxy = rotator({"providers": {"gemini": {"base_url": ws_vendor.url}}}, fresh=True, args=("-w", str(flows)))
    path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent?key=client-placeholder"

    async def talk() -> dict:
        tls = ssl.create_default_context(cafile=str(proxy.ca_cert))
        async with await connect(f"wss://generativelanguage.googleapis.com{path}", proxy=proxy.url, ssl=tls,
                                 open_timeout=15) as ws:
            await ws.send(json.dumps({"setup": {"model": "models/gemini-2.5-flash"}}))
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    assert asyncio.run(talk()) == {"echo": {"setup": {"model": "models/gemini-2.5-flash"}}}
    [hs] = ws_vendor.wait_for(1)
    assert hs.headers["x-goog-api-key"] == "g-pool-1" and "key=" not in hs.query  # the client's key stays here
    proxy.proc.stop()
    raw = flows.read_bytes()
    assert b"g-pool-1" not in raw and b"client-placeholder" not in raw


def test_a_malformed_upgrade_is_refused_without_going_upstream(rotator, ws_vendor):
    proxy = rotator(on_ws_vendor(ws_vendor))

    tls = ssl.create_default_context(cafile=str(proxy.ca_cert))
    with httpx.Client(proxy=proxy.url, verify=tls, timeout=15) as client:
        resp = client.get("https://api.openai.com/v1/realtime", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert resp.status_code == 400
    assert ws_vendor.handshakes == []
    assert "Traceback" not in proxy.log


# --- pass


def test_pass_carries_responses_events_both_ways_with_a_pooled_key(rotator, ws_vendor):
    proxy = rotator(on_ws_vendor(ws_vendor, "pass"))
    create = {"type": "response.create", "model": "gpt-4o-mini", "input": "hi", "store": False}

    async def talk() -> list[dict]:
        async with await open_socket(proxy, "/v1/responses") as ws:
            await ws.send(json.dumps(create))
            events = []
            while not events or events[-1]["type"] != "response.completed":
                events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            return events

    events = asyncio.run(talk())
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == TEXT
    [hs] = ws_vendor.wait_for(1)
    assert hs.path == "/v1/responses"
    assert hs.credential in POOL
    assert [json.loads(m) for m in hs.messages] == [create]


def test_pass_retries_a_stalled_handshake_on_the_next_key(rotator, ws_vendor):
    proxy = rotator(on_ws_vendor(ws_vendor, "pass", first_token_timeout=FIRST_TOKEN_TIMEOUT), fresh=True)
    ws_vendor.script(WsFault.stall(20), key="sk-pool-1")

    start = time.monotonic()
    assert asyncio.run(echo_once(proxy, "/v1/responses")) == {"echo": {"hello": "world"}}
    elapsed = time.monotonic() - start
    assert FIRST_TOKEN_TIMEOUT * 0.9 <= elapsed < FIRST_TOKEN_TIMEOUT + MARGIN  # the handshake timeout, not the stall
    got = ws_vendor.wait_for(2)
    assert [h.credential for h in got] == ["sk-pool-1", "sk-pool-2"]
    assert [(h.status, h.outcome) for h in got[:1]] == [(None, "client-gone")] and got[1].status == 101
    assert "handshake timeout" in proxy.wait_log("retry")

    # The key that stalled rests, as after a first-token timeout: the next handshakes go to the others.
    for _ in range(2):
        assert asyncio.run(echo_once(proxy, "/v1/responses")) == {"echo": {"hello": "world"}}
    assert "sk-pool-1" not in [h.credential for h in ws_vendor.wait_for(4)[2:]]


def test_pass_stops_trying_keys_when_the_client_leaves_a_pending_handshake(rotator, ws_vendor):
    proxy = rotator(on_ws_vendor(ws_vendor, "pass", first_token_timeout=2), fresh=True)
    for key in POOL:
        ws_vendor.always(WsFault.stall(30), key=key)

    async def leave_once_the_vendor_has_the_handshake() -> None:
        client = asyncio.ensure_future(echo_once(proxy, "/v1/responses", timeout=60))
        await asyncio.to_thread(ws_vendor.wait_for, 1, 30.0, False)
        client.cancel()  # the client gives up while the handshake is pending
        await asyncio.gather(client, return_exceptions=True)

    asyncio.run(leave_once_the_vendor_has_the_handshake())
    # stays: absence. Without noticing, the proxy would go on to a third key by now (attempts at 0, 2 and 4 s)
    time.sleep(5)
    assert len(ws_vendor.handshakes) <= 2
    assert ws_vendor.wait_for(1)[0].outcome == "client-gone"
    proxy.wait_log("the client left while the handshake was pending")


def test_pass_retries_a_429_handshake_on_the_next_key(rotator, ws_vendor):
    proxy = rotator(on_ws_vendor(ws_vendor, "pass"), fresh=True)
    ws_vendor.always(WsFault.status(429), key="sk-pool-1")

    assert asyncio.run(echo_once(proxy, "/v1/responses")) == {"echo": {"hello": "world"}}
    assert [h.credential for h in ws_vendor.wait_for(2)] == ["sk-pool-1", "sk-pool-2"]


def test_pass_gives_the_client_the_last_answer_when_every_handshake_is_refused(rotator, ws_vendor):
    proxy = rotator(on_ws_vendor(ws_vendor, "pass", first_token_retries=2))
    for key in POOL:
        ws_vendor.always(WsFault.status(503, headers={"x-vendor-says": "busy"}), key=key)

    err = refusal(proxy, "/v1/responses")
    assert err.response.status_code == 503
    assert err.response.headers["x-vendor-says"] == "busy"
    assert b"fake WebSocket refusal 503" in err.response.body
    assert sorted(h.credential for h in ws_vendor.wait_for(3)) == POOL  # one attempt and two retries


def test_pass_forwards_a_client_error_at_once(rotator, ws_vendor):
    proxy = rotator(on_ws_vendor(ws_vendor, "pass"))
    ws_vendor.script(WsFault.status(400))

    assert refusal(proxy, "/v1/responses").response.status_code == 400
    assert len(ws_vendor.wait_for(1)) == 1


# --- issue 8.4: no flow holds a pooled key, even while its handshake is pending


@pytest.mark.parametrize("mode, path", [("downgrade", "/v1/realtime?model=gpt-realtime"), ("pass", "/v1/responses")])
def test_a_flow_saved_while_its_handshake_is_pending_holds_no_key(rotator, ws_vendor, tmp_path, mode, path):
    flows = tmp_path / "flows"
    proxy = rotator(on_ws_vendor(ws_vendor, mode), fresh=True, args=("-w", str(flows)))
    for key in POOL:
        ws_vendor.always(WsFault.stall(30), key=key)
    client = threading.Thread(target=lambda: asyncio.run(_try_open(proxy, path)), daemon=True)
    client.start()

    ws_vendor.wait_for(1, done=False)  # the handshake is pending at the vendor
    proxy.proc.stop()  # mitmdump writes the flows still pending when it stops
    client.join(10)

    raw = flows.read_bytes()
    assert b"sk-pool-" not in raw and b"sk-client-placeholder" not in raw
    [flow] = [f for f in saved_flows(flows) if f.request.path.startswith(path.partition("?")[0])]
    assert flow.response is None  # it really was saved mid-handshake
    assert flow.request.headers["authorization"].startswith("Bearer ") and "…" in flow.request.headers["authorization"]


async def _try_open(proxy: Rotator, path: str) -> None:
    try:
        async with await open_socket(proxy, path, timeout=20):
            pass
    except Exception:  # noqa: BLE001 - the proxy is stopped under it
        pass


# --- issue 17.8: a pending handshake's job is its own connection's, used once


def in_flight(proxy: Rotator) -> list[dict]:
    """The flows in flight as mitmproxy holds them (what mitmweb shows), from tests/e2e/flow_probe.py."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.request("GET", "http://rotator-test.probe/flows")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def test_a_pending_handshake_shows_no_job_and_another_connection_cannot_take_it(rotator, ws_vendor):
    proxy = rotator(on_ws_vendor(ws_vendor, "pass", first_token_timeout=3), fresh=True,
                    args=("-s", "tests/e2e/flow_probe.py"))
    ws_vendor.script(WsFault.stall(20), key="sk-pool-1")
    result: dict = {}
    client = threading.Thread(target=lambda: result.update(echo=asyncio.run(echo_once(proxy, "/v1/responses"))))
    client.start()
    ws_vendor.wait_for(1, done=False)  # the handshake is pending at the vendor

    [shown] = [f for f in in_flight(proxy) if "/v1/responses" in f["url"]]
    everything = json.dumps([shown["url"], shown["fields"], shown["comment"], shown["metadata"]])
    assert shown["id"] not in everything and "x-rotator-job" not in everything.lower()

    # Whoever sees the flow replays its upgrade to the address it points at, with the job id as it once went.
    host, port = shown["address"]
    replayed = {name: value for name, value in shown["fields"] if value.isascii()  # (not the masked key)
                and not name.lower().startswith("sec-websocket") and name.lower() not in ("connection", "upgrade")}

    async def replay() -> None:
        async with connect(f"ws://{host}:{port}/v1/responses", open_timeout=10,
                           additional_headers={**replayed, "x-rotator-job": shown["id"]}):
            pass

    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(replay())
    assert refused.value.response.status_code == 421
    assert len(ws_vendor.handshakes) == 1  # no upstream session was started for the replay

    client.join(20)
    assert result["echo"] == {"echo": {"hello": "world"}}  # the client's own handshake went on, on the next key
    assert [h.credential for h in ws_vendor.wait_for(2)] == ["sk-pool-1", "sk-pool-2"]


# --- issue 20: a WebSocket's handshakes go over the same key attempts as HTTP requests (leases, upstream_ca,
# upstream_proxy)


def test_max_concurrent_holds_across_an_open_websocket_and_an_http_request_on_its_key(rotator, ws_vendor, fake_vendor):
    both = ws_vendor.with_http(fake_vendor.port)
    proxy = rotator({"providers": {"openai": {"base_url": f"{both}/v1",
                                              "keys": [{"key": "sk-pool-1", "max_concurrent": 1}]}},
                     "websocket": "pass", "streaming": {"first_token_timeout": 1}}, fresh=True)
    client = make_client("chat").with_options(max_retries=0)

    async def http_while_the_socket_is_open() -> Exception:
        async with await open_socket(proxy, "/v1/realtime") as ws:
            await ws.send(json.dumps({"hello": "world"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"echo": {"hello": "world"}}
            with pytest.raises(Exception) as busy:
                await asyncio.to_thread(call, "chat", client, False)
            return busy.value

    busy = asyncio.run(http_while_the_socket_is_open())
    assert getattr(busy, "status_code", None) == 429, busy
    assert "max_concurrent" in json.dumps(busy.body)
    assert fake_vendor.requests == []  # the request waited for the key and never went upstream

    # The socket closed, its key is given back: the next request is served on it. (Not asked: how many times. The
    # 1 s first-token timeout the 429 needs is one a loaded machine's vendor can miss, and the product then rightly
    # asks the pool's one key again.)
    assert call("chat", client, stream=False).text == TEXT
    assert set(fake_vendor.keys()) == {"sk-pool-1"} and ws_vendor.keys() == ["sk-pool-1"]


def test_a_websockets_attempts_are_heard_by_plugins_of_the_config_it_serves(rotator, ws_vendor, tmp_path):
    """The decision trail (rewrite/plugins/trail.py) reads the config: with no pool of several keys (here one pool,
    of one key) it explains nothing, on a WebSocket's attempts as on an HTTP request's. Plug-ins made of a default config saw no pools at
    all and put a trail of one candidate on the socket's flow."""
    flows = tmp_path / "flows"
    one_key = {"openai": {"base_url": f"{ws_vendor.url}/v1", "keys": ["sk-pool-1"]}, "anthropic": None, "gemini": None}
    proxy = rotator({"providers": one_key, "websocket": "pass"}, fresh=True, args=("-w", str(flows)))
    assert asyncio.run(echo_once(proxy, "/v1/realtime")) == {"echo": {"hello": "world"}}
    assert ws_vendor.keys() == ["sk-pool-1"]

    proxy.proc.stop()  # the flow file is complete once mitmdump has exited
    [flow] = [f for f in saved_flows(flows) if f.request.path == "/v1/realtime"]
    assert flow.websocket is not None and flow.metadata["rotator"]["key"]  # served by the pooled key, and said so
    assert "trail" not in flow.metadata["rotator"]


@pytest.fixture
def ws_vendor_over_tls(ws_vendor, tmp_path):
    """The fake WebSocket vendor behind a TLS front whose certificate only its private CA signs."""

    def start(hostname: str, credentials: tuple[str, str] | None = None) -> tuple[ConnectProxy, TLSFront]:
        front = TLSFront(tmp_path, hostname, ("127.0.0.1", ws_vendor.port))
        egress = ConnectProxy({f"{hostname}:443": None}, credentials=credentials, front=front).start()
        started.append(egress)
        return egress, front

    started: list[ConnectProxy] = []
    yield start
    for egress in started:
        egress.stop()


def test_a_provider_behind_a_private_ca_given_in_upstream_ca_is_reached_over_wss(rotator, ws_vendor_over_tls,
                                                                                  ws_vendor):
    _, front = ws_vendor_over_tls("localhost")  # (the proxy only hosts the front here: it is not configured)
    assert front.address is not None
    proxy = rotator({"providers": {"openai": {"base_url": f"https://localhost:{front.address[1]}/v1"}},
                     "websocket": "pass", "upstream_ca": str(front.ca_file)})

    assert asyncio.run(echo_once(proxy, "/v1/responses")) == {"echo": {"hello": "world"}}
    [hs] = ws_vendor.wait_for(1)
    assert hs.credential in POOL and hs.path == "/v1/responses"
    assert front.connections == 1  # over TLS, through the front


EGRESS_USER, EGRESS_PASSWORD = "corp-user", "Egress-Secret-77"


def test_an_upgrade_goes_through_upstream_proxy_in_a_connect_tunnel(rotator, ws_vendor_over_tls, ws_vendor):
    egress, front = ws_vendor_over_tls("api.vendor.test", (EGRESS_USER, EGRESS_PASSWORD))
    proxy = rotator({"providers": {"openai": {"base_url": "https://api.vendor.test/v1"}}, "websocket": "pass",
                     "upstream_ca": str(front.ca_file)},
                    upstream_proxy=f"http://{EGRESS_USER}:{EGRESS_PASSWORD}@127.0.0.1:{egress.port}")

    assert asyncio.run(echo_once(proxy, "/v1/realtime?model=gpt-realtime")) == {"echo": {"hello": "world"}}
    [hs] = ws_vendor.wait_for(1)
    assert hs.headers["host"] == "api.vendor.test" and hs.credential in POOL  # (resolved by the proxy only)
    assert [(a.method, a.target, a.status) for a in egress.seen] == [("CONNECT", "api.vendor.test:443", 200)]
    assert egress.seen[0].proxy_authorization is not None and "proxy-authorization" not in hs.headers
    assert EGRESS_PASSWORD not in proxy.log


def test_an_egress_proxy_refusing_the_upgrades_tunnel_is_a_clear_502(rotator, ws_vendor_over_tls, ws_vendor):
    egress, front = ws_vendor_over_tls("api.vendor.test", (EGRESS_USER, EGRESS_PASSWORD))
    proxy = rotator({"providers": {"openai": {"base_url": "https://api.vendor.test/v1"}}, "websocket": "pass",
                     "upstream_ca": str(front.ca_file), "streaming": {"first_token_retries": 1}},
                    upstream_proxy=f"http://{EGRESS_USER}:wrong-{EGRESS_PASSWORD}@127.0.0.1:{egress.port}")

    err = refusal(proxy, "/v1/realtime")
    assert err.response.status_code == 502
    said = err.response.body.decode()
    assert "upstream proxy" in said and "refused CONNECT api.vendor.test:443: 407" in said
    assert EGRESS_PASSWORD not in said and EGRESS_PASSWORD not in proxy.log
    assert ws_vendor.handshakes == []
    assert [a.status for a in egress.seen] == [407, 407]  # one attempt and its retry, as for HTTP

"""Where a pooled credential could leave Rotator besides its upstream request: never in a log record (a library's
DEBUG ones included) nor in an answer a vendor gave about it.

mitmproxy runs with the root logger at DEBUG (mitmproxy/tools/main.py) and mitmweb's event log keeps every record,
debug ones included, so a library's DEBUG record is as visible as Rotator's own lines."""

from __future__ import annotations

import http
import logging

import httpx
from websockets.asyncio.server import serve

from rewrite.config import StreamingConfig, parse
from rewrite.exchange.job import Job
from rewrite.exchange.websocket import SocketJob, open_upstream
from rewrite.lifecycle.payer import Ticket, carried
from rewrite.lifecycle.setting import Setting
from rewrite.providers.signer import CloudKey, Signer
from rewrite.routing.router import Route, Router
from rewrite.upstream import client as upstream_client
from tests.support.engine_harness import Upstream, run
from tests.support.masks import masked

SECRET_KEY = "pooled-secret-access-key-0123456789"
SESSION_TOKEN = "pooled-session-token-IQoJb3JpZ2luX2VjEXAMPLE"
POOLED = "sk-pool-secret-key-000000000000"
QUOTED_MASKED = f"Incorrect API key provided: {masked(POOLED)}".encode()


def test_signing_a_pooled_request_logs_no_session_token_at_debug(caplog):
    caplog.set_level(logging.DEBUG)  # (the root logger, as mitmproxy sets it)
    key = CloudKey("AKIDPOOLEXAMPLE", "us-east-1", SECRET_KEY, SESSION_TOKEN)
    headers = Signer("bedrock", "bedrock-runtime.{region}.amazonaws.com").sign(
        "POST", "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/invoke", "",
        [("content-type", "application/json")], b"{}", key, "us-east-1")
    assert ("X-Amz-Security-Token", SESSION_TOKEN) in headers  # (the token went upstream)
    assert not [r.getMessage() for r in caplog.records
                if SESSION_TOKEN in r.getMessage() or SECRET_KEY in r.getMessage()]


def _quoting(sent: str) -> str:
    """A refusal as some OpenAI-compatible servers word it: the key they refused quoted whole."""
    return f"Incorrect API key provided: {sent}."


async def test_a_vendor_refusal_that_quotes_the_pooled_key_reaches_the_client_without_it():
    def refused(request: httpx.Request) -> httpx.Response:
        sent = request.headers["authorization"].removeprefix("Bearer ")
        return httpx.Response(401, json={"error": {"message": _quoting(sent), "type": "invalid_request_error",
                                                   "code": "invalid_api_key"}})

    out, job = await run("openai_chat", Upstream([refused]), keys=(POOLED,))
    assert out.status == 401 and QUOTED_MASKED in out.body  # (the vendor's words, the key masked)
    assert POOLED.encode() not in out.body


async def test_a_websocket_refusal_that_quotes_the_pooled_key_reaches_the_client_without_it():
    def refuse(conn, request):
        sent = request.headers["authorization"].removeprefix("Bearer ")
        return conn.respond(http.HTTPStatus.UNAUTHORIZED, _quoting(sent) + "\n")

    async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=refuse,
                     logger=logging.getLogger("tests.vendor")) as server:
        port = server.sockets[0].getsockname()[1]
        provider = Router(parse(f"providers: {{openai: {{base_url: 'http://127.0.0.1:{port}/v1', "
                                f"keys: [{POOLED}]}}}}")).provider_named("openai")
        sj = SocketJob(Job("job-0001", Route(provider, None), provider), [("authorization", "Bearer sk-c")],
                       "/v1/realtime")
        failure = await open_upstream(sj, StreamingConfig(first_token_timeout=5), upstream_client.Upstream(), Setting())
    assert failure is not None and failure.status == 401 and QUOTED_MASKED in failure.body
    assert POOLED.encode() not in failure.body


def test_every_credential_an_attempt_carried_is_masked_in_the_answer_in_the_form_it_went():
    minted = "ya29.minted-vertex-access-token-000"  # (a Vertex service account's, not the pooled name)
    sent = [("authorization", f"Bearer {minted}"), ("api-key", "azure-resource-key-0001"),
            ("content-type", "application/json")]
    ticket = Ticket("service-account@project-a", "serv…ct-a")
    quoted = f"token {minted} refused; api-key azure-resource-key-0001; key AIzaQueryKey-000000001".encode()

    shown = ticket.scrubbed(quoted, carried(sent, "alt=sse&key=AIzaQueryKey-000000001", "key"))

    assert shown == (f"token {masked(minted)} refused; api-key {masked('azure-resource-key-0001')}; "
                     f"key {masked('AIzaQueryKey-000000001')}").encode()

"""Subscription logins (rewrite/providers/login.py): which requests are a login's, its config, the book of the logins
seen, and one exchange of a login against a scripted upstream (no mitmproxy, no sockets)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from protocols.windows import Window, WindowStatus
from rewrite.config import ConfigError, parse
from rewrite.config_settings import StreamingConfig
from rewrite.exchange.exchange import Exchange, Job
from rewrite.intake.clients import HeldCredential
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.pool.logins import MAX_LOGINS, LoginBook
from rewrite.routing.router import Router
from tests.support import login_dialects as ld
from tests.support.engine_harness import FakeResponder, Upstream, events_of, sse
from tests.support.samples import ANTHROPIC_TEXT

TOKEN = "sk-ant-oat01-the-users-own-login"
OAUTH = {"authorization": f"Bearer {TOKEN}", "anthropic-beta": "claude-code-20250219,oauth-2025-04-20"}
BILLING = "x-anthropic-billing-header: cc_version=2.1.197.abc; cc_entrypoint=sdk-cli; cch=0123456789abcdef;"
SIGNED = {"model": "claude-opus-4-8", "max_tokens": 32000, "stream": True, "metadata": {"user_id": "{}"},
          "system": [{"type": "text", "text": BILLING}, {"type": "text", "text": "You are Claude Code."}],
          "messages": [{"role": "user", "content": "hi"}]}


def router(text: str = "") -> Router:
    return Router(parse(text))


# -- which requests are a login's


def test_an_oauth_login_on_anthropics_host_is_claude_logins_and_a_key_stays_anthropics():
    r = router("providers: {anthropic: {keys: [sk-ant-pool]}}")

    assert r.route("api.anthropic.com", "POST", "/v1/messages", OAUTH).provider.name == "claude_login"
    assert r.route("api.anthropic.com", "POST", "/v1/messages", {"authorization": "Bearer x",
                                                               "anthropic-beta": "oauth-2025-04-20"}
                   ).provider.name == "claude_login"
    assert r.route("api.anthropic.com", "POST", "/v1/messages", {"x-api-key": "sk-ant-api"}).provider.name == "anthropic"
    assert r.provider_for("api.anthropic.com").name == "anthropic"  # the host's API-key provider


def test_an_oauth_token_is_a_login_without_its_beta_and_another_bearer_token_is_not():
    r = router()

    assert r.route("api.anthropic.com", "POST", "/v1/messages", {"authorization": f"Bearer {TOKEN}"}
                   ).provider.name == "claude_login"
    assert r.route("api.anthropic.com", "POST", "/v1/messages", {"authorization": "Bearer sk-ant-api03-x"}
                   ).provider.name == "anthropic"


def test_a_logins_other_paths_are_not_rotators():
    r = router("providers: {anthropic: {keys: [sk-ant-pool]}}")

    assert r.route("api.anthropic.com", "GET", "/api/oauth/usage", OAUTH) is None  # (it was anthropic's: key swapped)
    assert r.route("api.anthropic.com", "POST", "/v1/messages/count_tokens", OAUTH) is None
    assert r.route("api.anthropic.com", "GET", "/v1/models", {"x-api-key": "k"}).provider.name == "anthropic"


@pytest.mark.parametrize("host", ["api.githubcopilot.com", "api.individual.githubcopilot.com",
                                  "api.business.githubcopilot.com", "API.Enterprise.githubcopilot.com"])
def test_copilots_api_hosts_speak_the_protocol_their_path_names(host):
    r = router()
    token = {"authorization": "Bearer gho_x"}

    served = {path: r.route(host, "POST", path, token) for path in ("/responses", "/chat/completions", "/v1/messages")}

    assert {route.provider.name for route in served.values()} == {"copilot"}
    assert [route.protocol.name for route in served.values()] == ["openai_responses", "openai_chat",
                                                                 "anthropic_messages"]
    assert r.route(host, "GET", "/models", token) is None
    assert r.route(host, "POST", "/v1/responses/compact", token) is None


def test_copilots_other_hosts_are_nobodys():
    r = router()

    for host in ("proxy.individual.githubcopilot.com", "githubcopilot.com", "api.github.com"):
        assert r.provider_for(host) is None and r.route(host, "POST", "/chat/completions", {}) is None
    assert r.claimed_style("api.github.com", {}) is not None  # (a side host: its flows show the token masked)


# -- the config


def test_keys_on_a_login_stop_start_up_with_one_line_saying_why():
    with pytest.raises(ConfigError) as raised:
        router("providers: {copilot: {keys: [gho_someone_else]}}")

    message = str(raised.value)
    assert message.startswith("providers.copilot.keys: copilot serves each client's own subscription login")
    assert "never pooled" in message and "terms" in message and "\n" not in message


def test_a_logins_base_url_and_hosts_may_be_set():
    r = router("providers: {claude_login: {base_url: 'http://127.0.0.1:9'}, copilot: {hosts: [copilot.example]}}")

    assert r.provider_named("claude_login").upstream_url("/v1/messages") == "http://127.0.0.1:9/v1/messages"
    assert r.route("copilot.example", "POST", "/responses", {}).provider.name == "copilot"
    assert r.provider_named("copilot").upstream_url("/responses", "copilot.example") == "https://copilot.example/responses"


def test_a_logins_requests_follow_only_a_route_from_it():
    r = router("providers: {anthropic: {keys: [k]}}\n"
               "routes: [{models: ['claude-*'], targets: [anthropic]},"
               " {from: claude_login, models: ['claude-opus-*'], targets: [claude_login, anthropic]}]")
    login, key = r.provider_named("claude_login"), r.provider_named("anthropic")

    assert [p.name for p, _ in r.targets(login, "claude-opus-4-8")] == ["claude_login", "anthropic"]
    assert [p.name for p, _ in r.targets(login, "claude-haiku-4-5")] == ["claude_login"]  # never the pool by model
    assert [p.name for p, _ in r.targets(key, "claude-haiku-4-5")] == ["anthropic"]


# -- the book of logins


def test_a_login_is_named_by_its_fingerprint_and_shown_masked():
    book = LoginBook("claude_login")

    state = book.login(TOKEN)

    assert book.login(TOKEN) is state and len(book) == 1
    assert TOKEN not in json.dumps(book.describe()) and state.masked == "sk-a…ogin"
    assert state.id != TOKEN and len(state.id) == 24


def test_a_login_is_exhausted_by_its_windows_and_served_again_when_they_say_so():
    book = LoginBook("claude_login")
    state = book.login(TOKEN)
    reset = time.time() + 3600

    book.reported(state, (Window("five_hour", used=1.0, resets_at=reset, status=WindowStatus.EXHAUSTED,
                                 binding=True),))

    assert state.exhausted_for("any-model", time.time()) == (reset, "the plan's five_hour window is used up")
    assert "exhausted until" in book.describe()[0]["text"]
    book.reported(state, (Window("five_hour", used=0.1, status=WindowStatus.ALLOWED, binding=True),))
    assert state.exhausted_for("any-model", time.time()) is None


def test_a_models_exhaustion_leaves_the_logins_other_models():
    book = LoginBook("copilot")
    state = book.login("gho_x")

    book.exhaust(state, time.time() + 60, "gpt-5", "the plan's premium requests are used up")

    assert state.exhausted_for("gpt-5", time.time()) is not None
    assert state.exhausted_for("gpt-5-mini", time.time()) is None


def test_the_book_forgets_the_login_seen_longest_ago():
    book = LoginBook("copilot")
    first = book.login("gho_first")
    for n in range(MAX_LOGINS):
        book.login(f"gho_{n}")

    assert len(book) == MAX_LOGINS and first.id not in {x["id"] for x in book.describe()}


# -- one exchange of a login


def anthropic_stream(headers: dict | None = None) -> httpx.Response:
    response = sse(events_of(ANTHROPIC_TEXT))
    response.headers.update(headers or {})
    return response


def error(status: int, body: dict, headers: dict) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": "application/json", **headers}, json=body)


async def serve(config: str, upstream: Upstream, body: bytes, headers: dict = OAUTH,
                host: str = "api.anthropic.com", path: str = "/v1/messages") -> tuple[FakeResponder, Job]:
    cfg = parse(config)
    cfg.streaming = StreamingConfig(first_token_timeout=5, idle_timeout=5, heartbeat_interval=30)
    r = Router(cfg)
    route = r.route(host, "POST", path, headers)
    assert route is not None
    job = Job("job-login", route, route.provider)
    job.credential = HeldCredential(None, [(n, v) for n, v in headers.items() if n == "authorization"])
    sent = [("content-type", "application/json"), ("host", host),
            *((n, v) for n, v in headers.items() if n != "authorization")]
    responder = FakeResponder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        await Exchange(client, cfg.streaming, job, LoopbackRequest("POST", path + "?beta=true", sent, body), responder,
                       router=r).run()
    return responder, job


LOGIN_AT_FAKE = "providers: {claude_login: {base_url: 'http://vendor.test'}, anthropic: {base_url: 'http://vendor.test', keys: [sk-ant-pool]}}"
REWRITES = ("providers: {claude_login: {base_url: 'http://vendor.test', adapters: [{cap: {max_tokens: 1000}}],"
            " models: {claude-opus-4-8: {adapters: [{drop: [metadata]}]}}}}")
FALLBACK = LOGIN_AT_FAKE + "\nroutes: [{from: claude_login, targets: [claude_login, anthropic]}]"


async def test_a_signed_body_goes_to_its_login_as_it_came_whatever_is_configured():
    upstream = Upstream([lambda r: anthropic_stream(ld.windows(ld.CLAUDE_LOGIN))])
    body = json.dumps(SIGNED, indent=1).encode()  # (bytes a re-serialisation would change)

    responder, job = await serve(REWRITES, upstream, body)

    [sent] = upstream.seen
    assert sent.content == body and sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert responder.status == 200 and job.covered and job.cost is None
    [note] = job.notes
    assert note["kind"] == "signed" and note["skipped"] == ["adapters (cap, drop)"]
    assert {w["name"] for w in job.records["login"]["windows"]} == {"five_hour", "seven_day"}
    assert job.records["login"]["id"]


async def test_a_body_without_the_billing_line_gets_the_logins_adapters():
    upstream = Upstream([lambda r: anthropic_stream()])
    unsigned = {**SIGNED, "system": "You are Claude Code."}

    await serve(REWRITES, upstream, json.dumps(unsigned).encode())

    sent = json.loads(upstream.seen[0].content)
    assert sent["max_tokens"] == 1000 and "metadata" not in sent


async def test_an_exhausted_login_goes_on_with_the_next_targets_key_and_is_not_asked_again():
    rejected = ld.exhausted(ld.CLAUDE_LOGIN, resets_in=3600)
    upstream = Upstream([lambda r: error(429, rejected.error_body, dict(rejected.headers)),
                         lambda r: anthropic_stream()])

    responder, job = await serve(FALLBACK, upstream, json.dumps(SIGNED).encode())

    spent, served = upstream.seen
    assert spent.headers["authorization"] == f"Bearer {TOKEN}" and responder.status == 200
    assert served.headers["x-api-key"] == "sk-ant-pool" and "authorization" not in served.headers
    assert served.headers["anthropic-beta"] == "claude-code-20250219"  # the OAuth beta stays with the login
    assert [n["kind"] for n in job.notes] == ["fallback"] and not job.covered
    assert job.route.provider.logins.login(TOKEN).exhausted_for("claude-opus-4-8", time.time()) is not None


async def test_a_login_known_exhausted_is_left_for_the_next_target_unasked():
    cfg = parse(FALLBACK)
    cfg.streaming = StreamingConfig(first_token_timeout=5, idle_timeout=5, heartbeat_interval=30)
    r = Router(cfg)
    login = r.provider_named("claude_login")
    state = login.logins.login(TOKEN)
    login.logins.exhaust(state, time.time() + 600, "", "the plan's five_hour window is used up")
    upstream = Upstream([lambda r: anthropic_stream()])
    route = r.route("api.anthropic.com", "POST", "/v1/messages", OAUTH)
    job = Job("job-login", route, route.provider)
    job.credential = HeldCredential(None, [("authorization", f"Bearer {TOKEN}")])
    request = LoopbackRequest("POST", "/v1/messages", [("content-type", "application/json")],
                              json.dumps(SIGNED).encode())
    responder = FakeResponder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        await Exchange(client, cfg.streaming, job, request, responder, router=r).run()

    [served] = upstream.seen
    assert served.headers["x-api-key"] == "sk-ant-pool" and responder.status == 200
    assert "was not asked (plan exhausted until" in job.notes[0]["detail"]


async def test_without_a_route_an_exhausted_login_gets_its_own_answer():
    rejected = ld.exhausted(ld.CLAUDE_LOGIN, resets_in=3600)
    upstream = Upstream([lambda r: error(429, rejected.error_body, dict(rejected.headers))])

    responder, job = await serve(LOGIN_AT_FAKE, upstream, json.dumps(SIGNED).encode())

    assert len(upstream.seen) == 1 and responder.status == 429
    assert json.loads(responder.body)["error"]["type"] == "rate_limit_error"
    assert dict(responder.headers)["anthropic-ratelimit-unified-status"] == "rejected"


async def test_a_refused_login_is_its_clients_to_know_not_the_next_targets():
    upstream = Upstream([lambda r: error(401, {"type": "error", "error": {"type": "authentication_error",
                                                                            "message": "Invalid bearer token"}}, {})])

    responder, job = await serve(FALLBACK, upstream, json.dumps(SIGNED).encode())

    assert len(upstream.seen) == 1 and responder.status == 401


async def test_copilot_is_sent_to_the_host_its_client_called():
    upstream = Upstream([lambda r: sse([b'data: {"choices":[{"delta":{"content":"hi"},"index":0}]}\n\n',
                                        b"data: [DONE]\n\n"])])
    body = json.dumps({"model": "gpt-5-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]})

    await serve("", upstream, body.encode(), {"authorization": "Bearer gho_x"}, "api.business.githubcopilot.com",
                "/chat/completions")

    [sent] = upstream.seen
    assert str(sent.url).startswith("https://api.business.githubcopilot.com/chat/completions")
    assert sent.headers["authorization"] == "Bearer gho_x"


async def test_copilots_spent_premium_requests_leave_that_model_for_the_next_target_and_the_login_for_others():
    spent = ld.exhausted(ld.COPILOT)
    upstream = Upstream([lambda r: error(402, spent.error_body, dict(spent.headers)),
                         lambda r: sse([b'data: {"choices":[{"delta":{"content":"hi"},"index":0}]}\n\n',
                                        b"data: [DONE]\n\n"])])
    body = json.dumps({"model": "gpt-5", "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()
    config = ("providers: {copilot: {base_url: 'http://vendor.test'}, openai: {base_url: 'http://vendor.test/v1',"
              " keys: [sk-pool]}}\nroutes: [{from: copilot, targets: [copilot, openai]}]")

    responder, job = await serve(config, upstream, body, {"authorization": "Bearer gho_x"},
                                 "api.individual.githubcopilot.com", "/chat/completions")

    assert responder.status == 200 and upstream.seen[1].headers["authorization"] == "Bearer sk-pool"
    login = job.route.provider.logins.login("gho_x")
    until, why = login.exhausted_for("gpt-5", time.time())
    assert until > time.time() + 19 * 86400 and why == "the plan's premium requests are used up"
    assert login.exhausted_for("gpt-5-mini", time.time()) is None

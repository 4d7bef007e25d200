"""Conversation affinity through the engine (rewrite/exchange/affinity.py, KeyAttempts): a conversation's turns go
to the key that served it, the key that served is bound (after a retry too), a failing bound key is unbound, a
Responses answer's id is bound as a pin (a background one polled, cancelled and deleted on its key), a Gemini cache or
an OpenAI conversation made through the pool is bound to the key that made it until it expires, and `affinity: off`
passes no affinity at all."""

from __future__ import annotations

import json
import time

import httpx
import pytest

import protocols
from protocols.windows import iso
from rewrite.config import parse
from rewrite.config_settings import StreamingConfig
from rewrite.engine import Engine
from rewrite.exchange.job import Job
from rewrite.inspection.flow_list import summary
from rewrite.intake.loopback_request import LoopbackRequest
from rewrite.plugins import affinity as affinity_plugin
from rewrite.plugins.affinity import may_bind, minimum_of
from rewrite.pool.keypool import stored_id
from rewrite.pool.local import Bindings
from tests.support import samples
from tests.support import translate_samples as S
from tests.support.engine_harness import PATHS, FakeResponder, Upstream, events_of, sse
from tests.support.flows import taken

pytestmark = pytest.mark.virtual_time  # (tests/support/virtual_time.py)

SESSION = ("x-claude-code-session-id", "session-1")
ANSWER = {"anthropic_messages": samples.ANTHROPIC_TEXT, "openai_responses": samples.RESPONSES_TEXT}


def engine_for(provider: str, extra: str = "", own: str = "") -> Engine:
    engine = Engine(parse(f"providers: {{{provider}: {{base_url: 'http://vendor.test', keys: [k1, k2, k3]{own}}}}}"
                          + extra))
    engine.config.streaming = StreamingConfig(first_token_timeout=5, idle_timeout=5, heartbeat_interval=30)
    return engine


def ok(protocol: str):
    return lambda r: sse(events_of(ANSWER[protocol]))


def failing(r: httpx.Request) -> httpx.Response:
    return httpx.Response(500, json={"error": {"message": "boom"}})


async def turn(engine: Engine, upstream: Upstream, body: dict, headers=(), protocol="anthropic_messages",
               client: str = "alice") -> Job:
    """One request through the engine as the addon hands it over (its client named), the upstream scripted."""
    host, path = PATHS[protocol]
    content = json.dumps({"model": "m", "max_tokens": 100, "stream": True, **body}).encode()
    return await call(engine, upstream, "POST", host, path, content, headers, client)


async def call(engine: Engine, upstream: Upstream, method: str, host: str, path: str, content: bytes = b"",
               headers=(), client: str = "alice") -> Job:
    """Any request through the engine as the addon hands it over (its client named), the upstream scripted."""
    route = engine.router.route(host, method, path)
    assert route is not None
    job = engine.submit(f"job-{len(engine.jobs):04d}", route)
    job.intake.client = client
    request = LoopbackRequest(method, path, [("host", host), ("content-type", "application/json"), *headers], content)
    engine.upstream._client = httpx.AsyncClient(transport=httpx.MockTransport(upstream))  # type: ignore[assignment]
    job.responder = responder = FakeResponder()
    await engine._handle(job, request, responder)
    return job


CONTEXT = " the project's notes" * 300  # (about 1 500 tokens: above the shortest prompt kept on one key)


def messages(n: int) -> list[dict]:
    """A conversation's first `n` turns' messages (user, assistant, ..., user), long enough to be kept on one key."""
    out = []
    for i in range(n):
        out.append({"role": "user", "content": f"question {i}" + (CONTEXT if i == 0 else "")})
        if i + 1 < n:
            out.append({"role": "assistant", "content": f"answer {i}"})
    return out


def notes(job: Job) -> list[dict]:
    """The flow's affinity notes: a conversation moved off its key, or placed anew after a compaction."""
    return [n for n in job.notes if n["kind"] == "affinity"]


def chosen(job: Job) -> list[str]:
    """Why each attempt's key was taken, as the flow's decision trail says it (tests/support/flows.py `taken`)."""
    return taken(job.records.get("trail", []))


async def test_a_sessions_second_turn_goes_to_the_key_that_served_the_first():
    engine = engine_for("anthropic")
    up = Upstream([ok("anthropic_messages")])
    first = await turn(engine, up, {"messages": messages(1)}, [SESSION])
    other = [{"role": "user", "content": "another conversation"}]
    await turn(engine, up, {"messages": other}, [("x-claude-code-session-id", "other")])
    second = await turn(engine, up, {"messages": messages(2)}, [SESSION])
    keys = up.keys()
    assert keys[2] == keys[0] and keys[1] != keys[0]
    assert chosen(second) == ["bound: session header:x-claude-code-session-id"]
    assert chosen(first) == ["new"] and not notes(first) + notes(second)  # (as it should be: the trail says it)
    assert all("k1" not in r["taken"] or "…" in r["taken"] for r in first.records["trail"] + second.records["trail"])


async def test_a_longer_lineage_without_a_session_finds_its_key():
    engine = engine_for("anthropic")
    up = Upstream([ok("anthropic_messages")])
    await turn(engine, up, {"messages": messages(1)})
    await turn(engine, up, {"messages": [{"role": "user", "content": "something else"}]})
    third = await turn(engine, up, {"messages": messages(3)})
    keys = up.keys()
    assert keys[2] == keys[0] and keys[1] != keys[0]
    assert chosen(third) == ["bound: lineage"]


async def test_the_key_that_served_after_a_retry_is_bound_and_a_failing_bound_key_unbound(monkeypatch):
    engine = engine_for("anthropic")
    pool = engine.router.provider_named("anthropic").pool
    unbound: list[str] = []
    unbind = pool.unbind

    def spy(key, affinity):
        unbound.append(key)
        unbind(key, affinity)

    monkeypatch.setattr(pool, "unbind", spy)
    up = Upstream([failing, ok("anthropic_messages"), failing, ok("anthropic_messages")])
    first = await turn(engine, up, {"messages": messages(1)}, [SESSION])
    assert "retry" in [n["kind"] for n in first.notes]
    served_first = up.keys()[1]
    second = await turn(engine, up, {"messages": messages(2)}, [SESSION])
    bound_try, served_second = up.keys()[2:4]
    assert bound_try == served_first and served_second != served_first  # (the bound key failed: moved on)
    assert chosen(second) == ["bound: session header:x-claude-code-session-id", "moved"]
    [moved] = notes(second)
    assert moved["why"] == "moved" and moved["detail"].endswith(": moved: key failed")
    assert unbound == [bound_try]  # (the first turn's failed key was not its conversation's yet)
    assert summary(second.notes)[0].startswith("retried 1× (status 500), moved to key ")
    await turn(engine, up, {"messages": messages(3)}, [SESSION])
    assert up.keys()[4] == served_second


async def test_affinity_off_passes_no_affinity_and_reads_no_evidence(monkeypatch):
    engine = engine_for("anthropic", "\naffinity: {mode: off}")
    assert not engine.plugin("affinity").on
    pool = engine.router.provider_named("anthropic").pool
    asked: list = []
    take = pool.take

    def spy(*args, **kwargs):
        asked.append(kwargs.get("affinity"))
        return take(*args, **kwargs)

    monkeypatch.setattr(pool, "take", spy)
    up = Upstream([ok("anthropic_messages")])
    for n in (1, 2, 3):
        job = await turn(engine, up, {"messages": messages(n)}, [SESSION])
        assert chosen(job) == ["strategy"] and notes(job) == []
    assert asked == [None, None, None]
    assert up.keys() == ["k1", "k2", "k3"]  # (round-robin, as without affinity)


async def test_a_provider_may_turn_it_off_alone():
    engine = engine_for("anthropic", own=", affinity: off")
    assert not engine.plugin("affinity").on


async def test_a_stored_responses_answer_is_bound_as_a_pin_for_the_turn_that_names_it():
    engine = engine_for("openai")
    up = Upstream([ok("openai_responses")])
    await turn(engine, up, {"input": "first question"}, protocol="openai_responses")
    await turn(engine, up, {"input": "unrelated", "store": False}, protocol="openai_responses")  # (the same id)
    third = await turn(engine, up, {"input": "next", "previous_response_id": "resp_68f1a2b3c4d5"},
                       protocol="openai_responses")
    keys = up.keys()
    assert keys[2] == keys[0] and keys[1] != keys[0]
    assert chosen(third) == ["bound: previous_response_id"]


@pytest.mark.parametrize("rest, answered", [(3.0, True), (60.0, False)])
async def test_a_pinned_conversations_resting_key_is_waited_for_else_the_client_is_told_when_it_is_back(rest, answered):
    """Another organization would not find the stored answer: the turn waits for its key's rest within the
    first-token timeout (5 s here), or is answered 429 with that key's own return (the other keys being ready)."""
    engine = engine_for("openai")
    up = Upstream([ok("openai_responses")])
    await turn(engine, up, {"input": "first question"}, protocol="openai_responses")
    pinned = up.keys()[0]
    engine.router.provider_named("openai").pool.rests.bench(pinned, rest)
    job = await turn(engine, up, {"input": "next", "previous_response_id": "resp_68f1a2b3c4d5"},
                     protocol="openai_responses")
    if answered:
        assert up.keys() == [pinned, pinned]
        return
    assert len(up.seen) == 1  # (nothing sent to a key whose organization would not find it)
    responder = job.responder
    assert responder.status == 429 and dict(responder.headers)["retry-after"] in ("59", "60")
    assert "holds this conversation's previous_response_id" in json.loads(responder.body)["error"]["message"]


async def test_the_response_kept_for_its_lineage_names_the_key_that_served_it():
    """(Responses continuity, kept with a route configured, records the pooled key whose organization stored the
    answer, by its fingerprint as the pool's kept state names it.)"""
    engine = engine_for("openai", "\nroutes: [{models: ['elsewhere-*'], targets: ['anthropic/claude-sonnet-4-5']}]")
    up = Upstream([ok("openai_responses")])
    await turn(engine, up, {"input": "first question"}, protocol="openai_responses")
    pool = engine.router.provider_named("openai").pool
    stored = protocols.registered("openai_responses").continuity
    continuity = engine.plugin("conversation").continuity
    holder = continuity.holder(stored, {"previous_response_id": "resp_68f1a2b3c4d5"}, "openai")
    assert holder == stored_id(pool, up.keys()[0]) and holder and up.keys()[0] not in holder


@pytest.mark.parametrize("rests", [False, True])
async def test_a_stored_responses_answer_whose_binding_was_lost_goes_to_the_key_recorded_as_holding_it(rests):
    """The pin's binding lost (a restart with another state file, a worker deciding alone), the key Rotator's
    continuity recorded for the stored answer is the turn's bound key all the same: it serves, or, resting longer than
    a request may wait, the turn is sent whole to another key."""
    engine = engine_for("openai", "\nroutes: [{models: ['elsewhere-*'], targets: ['anthropic/claude-sonnet-4-5']}]")
    up = Upstream([ok("openai_responses")])
    await turn(engine, up, {"input": "first question"}, protocol="openai_responses")
    pinned = up.keys()[0]
    pool = engine.router.provider_named("openai").pool
    pool.local.books.bindings = Bindings(len(pool.keys))  # (as a process that never saw the binding)
    if rests:
        pool.rests.bench(pinned, 60.0)
    job = await turn(engine, up, {"input": "next", "previous_response_id": "resp_68f1a2b3c4d5"},
                     protocol="openai_responses")
    assert job.responder.status == 200
    if not rests:
        assert up.keys() == [pinned, pinned]
        assert chosen(job) == ["bound: previous_response_id"] and job.records["trail"][0]["taken"] == pool.by_secret[pinned].masked
        return
    [sent] = up.seen[1:]
    assert up.keys()[1] != pinned and "previous_response_id" not in json.loads(sent.content)
    assert chosen(job) == ["bound: previous_response_id", "new"] and [n["why"] for n in notes(job)] == ["expanded"]


async def test_an_unstored_responses_answer_is_not_pinned():
    engine = engine_for("openai")
    up = Upstream([ok("openai_responses")])
    await turn(engine, up, {"input": "first question", "store": False}, protocol="openai_responses")
    await turn(engine, up, {"input": "next", "previous_response_id": "resp_68f1a2b3c4d5"},
               protocol="openai_responses")
    assert up.keys()[1] != up.keys()[0]


async def test_the_client_scopes_the_conversation():
    engine = engine_for("anthropic")
    up = Upstream([ok("anthropic_messages")])
    await turn(engine, up, {"messages": messages(1)}, [SESSION], client="alice")
    await turn(engine, up, {"messages": messages(2)}, [SESSION], client="bob")
    assert up.keys()[1] != up.keys()[0]


def early_picks(engine: Engine, body: bytes, model: str = "claude-sonnet-4-5") -> list[str]:
    """The models an early (prefetched) pick was started for, the pool taken as shared."""
    pool = engine.router.provider_named("anthropic").pool
    started: list[str] = []
    pool.shared = object()  # (only its presence is read before the pool's prefetch, recorded here)
    pool.prefetch = lambda m, tokens, **kw: started.append(m)  # type: ignore[method-assign]
    route = engine.router.route("api.anthropic.com", "POST", "/v1/messages")
    job = engine.submit(f"job-{len(engine.jobs):04d}", route)
    engine.arrive(job, "/v1/messages", body.replace(b'"m"', json.dumps(model).encode(), 1))
    return started


def test_a_request_too_small_to_bind_is_picked_early_one_that_may_bind_is_not():
    engine = engine_for("anthropic")
    small = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hello"}]}).encode()
    assert early_picks(engine, small) == ["claude-sonnet-4-5"]
    large = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 8000}]}).encode()
    assert early_picks(engine, large) == []  # (at the model's minimum cacheable prompt: it may have a binding)
    # (a model the tables do not name: the shortest prompt any vendor caches)
    assert early_picks(engine, small, model="some-unknown-model") == ["some-unknown-model"]
    assert early_picks(engine, large, model="some-unknown-model") == []


def test_a_small_body_that_names_a_pin_is_not_picked_early():
    engine = engine_for("anthropic")
    pinned = json.dumps({"model": "m", "previous_response_id": "resp_1",
                         "messages": [{"role": "user", "content": "hello"}]}).encode()
    assert early_picks(engine, pinned) == []


def test_a_small_body_naming_a_gemini_cache_in_either_spelling_may_bind():
    for spelled in ("cachedContent", "cached_content"):
        assert may_bind(4096, json.dumps({spelled: "cachedContents/x", "contents": "hi"}).encode())
    assert not may_bind(4096, json.dumps({"contents": "hi"}).encode())


def test_with_affinity_off_every_request_is_picked_early():
    engine = engine_for("anthropic", "\naffinity: {mode: 'off'}")
    large = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 8000}]}).encode()
    assert early_picks(engine, large) == ["claude-sonnet-4-5"]


async def test_a_cut_answers_continuation_goes_to_the_key_that_answered_the_cut_part():
    """The vendor cached the prompt on the key that began to answer: the continuation is asked there, and the
    conversation is bound to it (without affinity the pool's strategy would send it to the next key)."""
    engine = engine_for("anthropic")
    events = events_of(ANSWER["anthropic_messages"])
    cut_after_text = next(i for i, e in enumerate(events) if b"text_delta" in e) + 1

    def cut(r):
        return sse(events[:cut_after_text], then="reset")

    up = Upstream([cut, ok("anthropic_messages")])
    job = await turn(engine, up, {"messages": messages(1)}, [SESSION])
    keys = up.keys()
    assert len(keys) >= 2 and set(keys) == {keys[0]}  # (each continuation asked where the cut part was answered)
    assert job.resume  # (continued: how it ended is the seam's business)
    assert [c.partition(":")[0] for c in chosen(job)] == ["new"] + ["bound"] * (len(keys) - 1)
    await turn(engine, up, {"messages": messages(2)}, [SESSION])
    assert up.keys()[len(keys)] == keys[0]


@pytest.mark.parametrize("cache_read, bound", [(None, False), (3.0, False), (0.3, True)])
async def test_a_model_whose_cache_reads_cost_no_less_than_input_keeps_no_conversation_on_one_key(cache_read, bound):
    price = f"{{input: 3, output: 15{'' if cache_read is None else f', cache_read: {cache_read}'}}}"
    engine = engine_for("anthropic", f"\nprices: {{m: {price}}}")
    up = Upstream([ok("anthropic_messages")])
    first = await turn(engine, up, {"messages": messages(1)}, [SESSION])
    second = await turn(engine, up, {"messages": messages(2)}, [SESSION])
    keys = up.keys()
    assert (keys[1] == keys[0]) is bound  # (else the strategy rotates, as for a one-shot call)
    assert (chosen(first) + chosen(second) == ["new", "bound: session header:x-claude-code-session-id"]) is bound


async def test_a_short_prompt_at_a_model_the_tables_do_not_name_keeps_no_conversation_on_one_key():
    engine = engine_for("anthropic")
    up = Upstream([ok("anthropic_messages")])
    short = [{"role": "user", "content": "hello"}]
    first = await turn(engine, up, {"messages": short}, [SESSION])
    await turn(engine, up, {"messages": [*short, {"role": "assistant", "content": "hi"}, *short]}, [SESSION])
    assert up.keys()[1] != up.keys()[0] and chosen(first) == ["strategy"]  # (as for a one-shot call)


async def test_a_pool_of_one_key_reads_no_conversation():
    engine = Engine(parse("providers: {anthropic: {base_url: 'http://vendor.test', keys: [k1]}}"))
    engine.config.streaming = StreamingConfig(first_token_timeout=5, idle_timeout=5, heartbeat_interval=30)
    assert not engine.plugin("affinity").on  # (nothing to decide: no evidence read, no bindings kept)
    up = Upstream([ok("anthropic_messages")])
    job = await turn(engine, up, {"messages": messages(2)}, [SESSION])
    assert up.keys() == ["k1"] and not notes(job)


async def test_a_models_shortest_cacheable_prompt_is_looked_up_once_per_config(monkeypatch):
    """The capability tables are read for a provider's model once per config, not on every request (issue 35)."""
    looked_up: list[str] = []

    def counting(families: tuple[str, ...], model: str) -> int:
        looked_up.append(model)
        return minimum_of(families, model)

    monkeypatch.setattr(affinity_plugin, "minimum_of", counting)
    engine = engine_for("anthropic")
    up = Upstream([ok("anthropic_messages")])
    for n in (1, 2, 3):
        job = await turn(engine, up, {"messages": messages(n)}, [SESSION])
    assert looked_up == ["m"] and chosen(job)[0].startswith("bound: ")
    engine.configure(engine.config)  # (a config loaded again: its tables may have changed)
    await turn(engine, up, {"messages": messages(4)}, [SESSION])
    assert looked_up == ["m", "m"]


async def test_with_its_lineage_kept_a_pinned_conversation_whose_key_rests_is_sent_whole_to_another_key():
    """With a route configured, Rotator keeps each Responses answer (its continuity): when the key whose
    organization stored the answer rests longer than a request may wait, the turn is not refused with a 429 but sent
    to another key with the conversation's items in front of its input, and no previous_response_id."""
    engine = engine_for("openai", "\nroutes: [{models: ['elsewhere-*'], targets: ['anthropic/claude-sonnet-4-5']}]")
    up = Upstream([ok("openai_responses")])
    await turn(engine, up, {"input": "first question"}, protocol="openai_responses")
    pinned = up.keys()[0]
    engine.router.provider_named("openai").pool.rests.bench(pinned, 60.0)
    job = await turn(engine, up, {"input": "next", "previous_response_id": "resp_68f1a2b3c4d5"},
                     protocol="openai_responses")
    assert job.responder.status == 200
    [sent] = up.seen[1:]
    body = json.loads(sent.content)
    assert up.keys()[1] != pinned and "previous_response_id" not in body
    assert json.dumps(body["input"]).count("first question") == 1 and body["input"][-1]["content"] == "next"
    assert chosen(job) == ["bound: previous_response_id", "new"] and [n["why"] for n in notes(job)] == ["expanded"]


def routed_to_responses() -> Engine:
    """An Anthropic client's model routed to a Responses target of three keys."""
    engine = Engine(parse("providers: {openai: {base_url: 'http://vendor.test', keys: [k1, k2, k3], "
                          "protocol: responses, force_upstream_stream: false}}\n"
                          "routes: [{models: ['m'], targets: ['openai/o4-mini']}]"))
    engine.config.streaming = StreamingConfig(first_token_timeout=5, idle_timeout=5, heartbeat_interval=30)
    return engine


def forget_who_made_them(engine: Engine) -> None:
    """The field cache's entries as Rotator kept them before they named the key that made them."""
    store = engine.plugin("conversation").fields.store
    for name, (value, _) in list(store._entries.items()):
        record = json.loads(value)
        record.pop("key")
        store.put(name, json.dumps(record).encode(), 60)


@pytest.mark.parametrize("maker", ["known", "from before"])
async def test_encrypted_reasoning_the_field_cache_kept_from_another_key_is_left_out(maker):
    """An Anthropic client routed to a Responses target: the field cache gives the target its reasoning item back
    on the next turn. On another key (the first rests), whose organization would refuse it: left out up front when
    the entry names the key that made it; an entry from before, naming none, is sent, refused, and sent again
    without it (once)."""
    engine = routed_to_responses()

    def vendor(r: httpx.Request) -> httpx.Response:
        items = json.loads(r.content).get("input", [])
        if any(i.get("type") == "reasoning" for i in items) and r.headers["authorization"] != f"Bearer {made_by}":
            return httpx.Response(400, json={"error": {"message": "The encrypted content could not be verified.",
                                                       "type": "invalid_request_error", "param": None,
                                                       "code": "invalid_encrypted_content"}})
        return httpx.Response(200, json=S.RESPONSES_ANSWER)

    up = Upstream([vendor])
    first_body = {**S.anthropic_request(), "stream": False, "system": CONTEXT}
    first = await turn(engine, up, first_body)
    made_by = up.keys()[0]
    answer = json.loads(first.responder.body)
    if maker == "from before":
        forget_who_made_them(engine)
    engine.router.provider_named("openai").pool.rests.bench(made_by, 60.0)
    second = await turn(engine, up, {**S.anthropic_replay(first_body, answer), "stream": False})

    assert second.responder.status == 200
    served = up.seen[-1]
    assert served.headers["authorization"] != f"Bearer {made_by}"
    assert S.RESPONSES_ENCRYPTED not in served.content.decode()
    [note] = [n for n in second.notes if n["kind"] == "foreign"]
    assert note["items"] == 1 and note["key"] == engine.router.provider_named("openai").pool.by_secret[up.keys()[-1]].masked
    if maker == "known":
        assert len(up.seen) == 2  # (no 400 round trip)
        return
    refused, _ = up.seen[1:]
    assert refused.headers["authorization"] == served.headers["authorization"]
    assert S.RESPONSES_ENCRYPTED in refused.content.decode()


async def test_encrypted_reasoning_goes_back_to_the_key_that_made_it():
    engine = routed_to_responses()
    up = Upstream([lambda r: httpx.Response(200, json=S.RESPONSES_ANSWER)])
    first_body = {**S.anthropic_request(), "stream": False, "system": CONTEXT}
    first = await turn(engine, up, first_body)
    second = await turn(engine, up, {**S.anthropic_replay(first_body, json.loads(first.responder.body)),
                                     "stream": False})
    assert up.keys()[1] == up.keys()[0] and S.RESPONSES_ENCRYPTED in up.seen[1].content.decode()
    assert not [n for n in second.notes if n["kind"] == "foreign"]


# ------------------------------------------------------------------------------------------------------------------
# A Gemini explicit cache made through the pool: its cachedContents calls are pooled (the pooled key goes upstream),
# and only the project that made a cache knows it.

GEMINI_HOST = "generativelanguage.googleapis.com"
GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
CACHES = "/v1beta/cachedContents"
CACHE_NOT_HELD = {"error": {"code": 403, "message": "CachedContent not found (or permission denied)",
                            "status": "PERMISSION_DENIED"}}


class Projects:
    """A Gemini vendor whose keys are projects of their own: a cache is known to the key that made it alone, and lives
    `lifetime` seconds from when it was made or last given a ttl."""

    def __init__(self, lifetime: float = 3600.0) -> None:
        self.lifetime = lifetime
        self.made: dict[str, str] = {}  # cache name -> the key that made it
        self.expires: dict[str, float] = {}

    def __call__(self, r: httpx.Request) -> httpx.Response:
        key, path = r.headers["x-goog-api-key"], r.url.path
        body = json.loads(r.content) if r.content else {}
        if path == CACHES and r.method == "POST":
            name = f"cachedContents/c{len(self.made) + 1}"
            self.made[name] = key
            self.expires[name] = time.time() + self.lifetime
            return httpx.Response(200, json=self.resource(name))
        name = path.removeprefix("/v1beta/") if path.startswith(CACHES + "/") else body.get("cachedContent")
        if name is not None and self.made.get(name) != key:
            return httpx.Response(403, json=CACHE_NOT_HELD)
        if r.method == "DELETE":
            del self.made[name]
            return httpx.Response(200, json={})
        if r.method == "PATCH":
            self.expires[name] = time.time() + self.lifetime
        return httpx.Response(200, json=self.resource(name) if name and name != body.get("cachedContent")
                              else S.GEMINI_ANSWER)

    def resource(self, name: str) -> dict:
        return {"name": name, "model": "models/gemini-2.5-flash", "usageMetadata": {"totalTokenCount": 5000},
                "expireTime": iso(self.expires[name])}


def gemini_engine() -> Engine:
    return engine_for("gemini", own=", force_upstream_stream: false")


async def gemini(engine: Engine, up: Upstream, method: str, path: str, body: dict | None = None,
                 client: str = "alice") -> Job:
    return await call(engine, up, method, GEMINI_HOST, path, json.dumps(body).encode() if body else b"",
                      client=client)


def generate(n: int, cache: str | None = None) -> dict:
    body = {"contents": [{"role": "user", "parts": [{"text": f"question {n}"}]}]}
    return {**body, "cachedContent": cache} if cache else body


async def made_cache(engine: Engine, up: Upstream) -> tuple[str, str]:
    """A cache made through the pool: its name, and the key that made it."""
    job = await gemini(engine, up, "POST", CACHES, {"model": "models/gemini-2.5-flash", "ttl": "3600s",
                                                    "contents": [{"role": "user", "parts": [{"text": CONTEXT}]}]})
    assert job.responder.status == 200
    return json.loads(job.responder.body)["name"], up.keys()[-1]


def pin_binding(engine: Engine, name: str, client: str = "alice"):
    bindings = engine.router.provider_named("gemini").pool.local.books.bindings
    return bindings.ids.get(f"p:{client}:cachedContent:{name}")


async def test_a_gemini_cache_made_through_the_pool_is_used_read_and_changed_on_the_key_that_made_it():
    """Other requests in between go round the pool: without the binding, the cache's requests would too, and the
    other projects answer 403."""
    engine, projects = gemini_engine(), Projects()
    up = Upstream([projects])
    name, maker = await made_cache(engine, up)
    jobs = []
    for n in range(3):
        await gemini(engine, up, "POST", GENERATE, generate(n))  # (one-shot calls: the strategy's rotation)
        jobs.append(await gemini(engine, up, "POST", GENERATE, generate(n, name)))
    jobs.append(await gemini(engine, up, "GET", f"/v1beta/{name}"))
    jobs.append(await gemini(engine, up, "PATCH", f"/v1beta/{name}", {"ttl": "7200s"}))
    assert [j.responder.status for j in jobs] == [200] * 5
    keys = up.keys()
    assert [keys[i] for i in (2, 4, 6, 7, 8)] == [maker] * 5 and {keys[1], keys[3], keys[5]} - {maker}
    assert all(chosen(j) == ["bound: cachedContent"] for j in jobs)


async def test_the_caches_binding_lives_until_its_expiry_as_its_last_answer_says():
    engine, projects = gemini_engine(), Projects(lifetime=600.0)
    up = Upstream([projects])
    name, _ = await made_cache(engine, up)
    assert pin_binding(engine, name).until == pytest.approx(projects.expires[name], abs=1)
    projects.lifetime = 7200.0
    await gemini(engine, up, "PATCH", f"/v1beta/{name}", {"ttl": "7200s"})
    assert pin_binding(engine, name).until == pytest.approx(projects.expires[name], abs=1)
    assert pin_binding(engine, name, client="bob") is None  # (scoped by its client)


async def test_deleting_the_cache_on_its_key_drops_its_binding_and_a_403_for_it_puts_no_key_out():
    engine, projects = gemini_engine(), Projects()
    up = Upstream([projects])
    name, maker = await made_cache(engine, up)
    await gemini(engine, up, "POST", GENERATE, generate(0))
    deleted = await gemini(engine, up, "DELETE", f"/v1beta/{name}")
    assert deleted.responder.status == 200 and up.keys()[-1] == maker
    assert pin_binding(engine, name) is None
    gone = await gemini(engine, up, "POST", GENERATE, generate(1, name))
    assert chosen(gone) == ["new"]  # (no binding left: placed as a new conversation)
    assert gone.responder.status == 403 and json.loads(gone.responder.body) == CACHE_NOT_HELD
    assert len(up.seen) == 4  # (answered as it came, not retried elsewhere)
    pool = engine.router.provider_named("gemini").pool
    assert not any(s.out for s in pool.states)


@pytest.mark.parametrize("path", [GENERATE, "/v1beta/{name}"])
@pytest.mark.parametrize("rest, answered", [(3.0, True), (60.0, False)])
async def test_a_caches_resting_key_is_waited_for_else_the_client_is_told_when_it_is_back(path, rest, answered):
    engine = gemini_engine()
    up = Upstream([Projects()])
    name, maker = await made_cache(engine, up)
    engine.router.provider_named("gemini").pool.rests.bench(maker, rest)
    if path == GENERATE:
        job = await gemini(engine, up, "POST", GENERATE, generate(0, name))
    else:
        job = await gemini(engine, up, "GET", path.format(name=name))
    if answered:
        assert up.keys() == [maker, maker] and job.responder.status == 200
        return
    assert len(up.seen) == 1  # (nothing sent to a key whose project would not find it)
    assert job.responder.status == 429 and dict(job.responder.headers)["retry-after"] in ("59", "60")
    assert "holds this conversation's cachedContent" in json.loads(job.responder.body)["error"]["message"]


# ------------------------------------------------------------------------------------------------------------------
# OpenAI's stored responses and conversations: their own calls are pooled too, and only the organization that made
# one knows it (each key an organization of its own here).

OPENAI_HOST = "api.openai.com"


def not_found(what: str, name: str) -> dict:
    """OpenAI's 404 for a response or conversation the key's organization does not hold."""
    return {"error": {"message": f"{what} with id '{name}' not found.", "type": "invalid_request_error",
                      "param": None, "code": None}}


class Organizations:
    """An OpenAI vendor whose keys are organizations of their own: a stored response (a background one queued) and a
    conversation are known to the key that made them alone."""

    def __init__(self) -> None:
        self.made: dict[str, str] = {}  # response or conversation id -> the key that made it
        self.streamed: list[bool] = []  # whether each POST /v1/responses asked for a stream

    def __call__(self, r: httpx.Request) -> httpx.Response:
        key, path = r.headers["authorization"].removeprefix("Bearer "), r.url.path  # (the base URL has no /v1)
        body = json.loads(r.content) if r.content else {}
        if path == "/conversations" and r.method == "POST":
            return httpx.Response(200, json=self.conversation(self.make("conv", key)))
        if path == "/responses":
            self.streamed.append(body.get("stream") is True)
            conversation = body.get("conversation")
            if conversation is not None and self.made.get(conversation) != key:
                return httpx.Response(404, json=not_found("Conversation", conversation))
            made = self.make("resp", key) if body.get("store") is not False else "resp_unstored"
            return httpx.Response(200, json=self.response(made, body.get("background") is True))
        name = path.split("/")[2]
        if self.made.get(name) != key:
            return httpx.Response(404, json=not_found("Response" if name.startswith("resp") else "Conversation", name))
        if r.method == "DELETE":
            del self.made[name]
            deleted = "response" if name.startswith("resp") else "conversation"
            return httpx.Response(200, json={"id": name, "object": f"{deleted}.deleted", "deleted": True})
        if path.endswith("/items") or path.endswith("/input_items"):
            return httpx.Response(200, json={"object": "list", "data": [], "has_more": False})
        return httpx.Response(200, json=self.response(name, True) if name.startswith("resp")
                              else self.conversation(name))

    def make(self, kind: str, key: str) -> str:
        made = f"{kind}_{len(self.made) + 1}"
        self.made[made] = key
        return made

    @staticmethod
    def response(name: str, queued: bool) -> dict:
        return {"id": name, "object": "response", "created_at": 1_767_225_600, "model": "gpt-4.1",
                "status": "queued" if queued else "completed", "background": queued, "output": [], "usage": None}

    @staticmethod
    def conversation(name: str) -> dict:
        return {"id": name, "object": "conversation", "created_at": 1_767_225_600, "metadata": {}}


def openai_engine(own: str = ", force_upstream_stream: false") -> Engine:
    return engine_for("openai", own=own)


async def openai(engine: Engine, up: Upstream, method: str, path: str, body: dict | None = None) -> Job:
    return await call(engine, up, method, OPENAI_HOST, path, json.dumps(body).encode() if body else b"")


def one_shot(n: int) -> dict:
    return {"model": "gpt-4.1", "input": f"question {n}", "store": False}


def openai_pin(engine: Engine, kind: str, name: str):
    return engine.router.provider_named("openai").pool.local.books.bindings.ids.get(f"p:alice:{kind}:{name}")


async def test_a_background_response_is_polled_cancelled_and_deleted_on_the_key_whose_organization_holds_it():
    """Other requests in between go round the pool: without the binding, the polls would too, and the other
    organizations answer 404."""
    engine, orgs = openai_engine(), Organizations()
    up = Upstream([orgs])
    made = await openai(engine, up, "POST", "/v1/responses", {"model": "gpt-4.1", "input": "research", "background": True})
    assert made.responder.status == 200 and json.loads(made.responder.body)["status"] == "queued"
    name, maker = json.loads(made.responder.body)["id"], up.keys()[0]
    jobs = []
    for n in range(3):
        await openai(engine, up, "POST", "/v1/responses", one_shot(n))  # (one-shot calls: the strategy's rotation)
        jobs.append(await openai(engine, up, "GET", f"/v1/responses/{name}"))
    jobs.append(await openai(engine, up, "GET", f"/v1/responses/{name}/input_items"))
    jobs.append(await openai(engine, up, "POST", f"/v1/responses/{name}/cancel"))
    jobs.append(await openai(engine, up, "DELETE", f"/v1/responses/{name}"))
    assert [j.responder.status for j in jobs] == [200] * 6
    keys = up.keys()
    assert [keys[i] for i in (2, 4, 6, 7, 8, 9)] == [maker] * 6 and {keys[1], keys[3], keys[5]} - {maker}
    assert all(chosen(j) == ["bound: previous_response_id"] for j in jobs)
    assert openai_pin(engine, "previous_response_id", name) is None  # (deleted: unbound)


async def test_a_conversation_made_through_the_pool_is_used_read_and_deleted_on_the_key_that_made_it():
    engine, orgs = openai_engine(), Organizations()
    up = Upstream([orgs])
    made = await openai(engine, up, "POST", "/v1/conversations", {"metadata": {"topic": "demo"}})
    name, maker = json.loads(made.responder.body)["id"], up.keys()[0]
    assert openai_pin(engine, "conversation", name).until > time.time() + 29 * 86400  # (the pin's default)
    jobs = []
    for n in range(3):
        await openai(engine, up, "POST", "/v1/responses", one_shot(n))
        jobs.append(await openai(engine, up, "POST", "/v1/responses",
                                 {"model": "gpt-4.1", "input": f"turn {n}", "conversation": name}))
    jobs.append(await openai(engine, up, "GET", f"/v1/conversations/{name}/items"))
    jobs.append(await openai(engine, up, "GET", f"/v1/conversations/{name}"))
    jobs.append(await openai(engine, up, "DELETE", f"/v1/conversations/{name}"))
    assert [j.responder.status for j in jobs] == [200] * 6
    keys = up.keys()
    assert [keys[i] for i in (2, 4, 6, 7, 8, 9)] == [maker] * 6 and {keys[1], keys[3], keys[5]} - {maker}
    assert all(chosen(j) == ["bound: conversation"] for j in jobs)
    assert openai_pin(engine, "conversation", name) is None


async def test_another_organizations_404_for_a_stored_response_goes_to_the_client_and_puts_no_key_out():
    engine, orgs = openai_engine(), Organizations()
    up = Upstream([orgs])
    made = await openai(engine, up, "POST", "/v1/responses", {"model": "gpt-4.1", "input": "research", "background": True})
    name = json.loads(made.responder.body)["id"]
    await openai(engine, up, "DELETE", f"/v1/responses/{name}")
    gone = await openai(engine, up, "GET", f"/v1/responses/{name}")
    assert gone.responder.status == 404 and json.loads(gone.responder.body) == not_found("Response", name)
    assert len(up.seen) == 3  # (answered as it came, not retried elsewhere)
    pool = engine.router.provider_named("openai").pool
    assert not any(s.out for s in pool.states)
    assert not pool.rests_past(0.0, "gpt-4.1", 0)


async def test_a_background_request_is_not_forced_into_a_stream():
    """Its answer is the response queued, polled for by its id: a forced stream would hold the client until the work
    is done, and fold it into another answer than the vendor's."""
    engine, orgs = openai_engine(own=""), Organizations()
    up = Upstream([orgs])
    made = await openai(engine, up, "POST", "/v1/responses", {"model": "gpt-4.1", "input": "research", "background": True})
    assert json.loads(made.responder.body)["status"] == "queued"
    await openai(engine, up, "POST", "/v1/responses", one_shot(0))
    assert orgs.streamed == [False, True]

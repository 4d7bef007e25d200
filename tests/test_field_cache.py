"""The field cache: a vendor's opaque reasoning state, lost by a client of another protocol, is put back on the
next turn, and only ever for the vendor that issued it.

Each test plays two turns through the real translators: the vendor's answer (a recorded sample) is read into the
unified form and captured, the client receives it in its own protocol and replays it with its tool results, and
the request to the vendor is checked after `restore`.
"""

import copy
import dataclasses
import json

import protocols.translate as translate
from protocols.evidence import content_mark
from protocols.openai_responses.evidence import READER
from protocols.unified import (
    Answer,
    Message,
    Reasoning,
    ReasoningConfig,
    Request,
    Text,
    ToolCall,
    ToolIds,
    ToolResult,
)
from rewrite.conversation.field_cache import DEFAULT_TTL, FieldCache, Issuer, leaves_state
from rewrite.state.kv import MemoryStore
from tests.support import translate_samples as S
from tests.support.timing import FakeClock

CHAT, RESPONSES, ANTHROPIC, GEMINI = "openai_chat", "openai_responses", "anthropic_messages", "gemini"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": S.WEATHER_SCHEMA}},
         {"type": "function", "function": {"name": "get_time", "parameters": S.TIME_SCHEMA}}]


def new_cache(clock: FakeClock | None = None, **bounds) -> FieldCache:
    store = MemoryStore(bounds.get("entries", 1000), bounds.get("bytes", 1 << 20), clock or FakeClock(0.0))
    return FieldCache(store)


def first_turn(cache: FieldCache, scope: Issuer, client: str, answer: dict, request: dict, key: str = "") -> dict:
    """The vendor's answer (from the pooled key of fingerprint `key`) captured, and returned as the client receives
    it."""
    ir_request = translate.request_to_ir(client, request)
    answer_ir = translate.get(scope.protocol).answer_to_ir(copy.deepcopy(answer), ToolIds())
    cache.capture(scope, answer_ir, ir_request, key)
    return translate.get(client).answer_from_ir(answer_ir, ir_request)


def chat_request(thinking: bool = False, question: str = S.QUESTION) -> dict:
    body = {"model": "m", "messages": [{"role": "user", "content": question}], "tools": TOOLS}
    if thinking:
        body["reasoning_effort"] = "medium"
    return body


def chat_replay(first: dict, answer: dict) -> dict:
    """The Chat client's next request: the assistant message it got, and a result for each tool call."""
    message = answer["choices"][0]["message"]
    results = [{"role": "tool", "tool_call_id": c["id"], "content": S.WEATHER_RESULT} for c in message["tool_calls"]]
    return {**first, "messages": [*first["messages"], message, *results]}


def upstream_body(cache: FieldCache, scope: Issuer, client: str, body: dict) -> dict:
    request = translate.request_to_ir(client, body)
    request.model = scope.model  # as the engine sends it
    cache.restore(scope, request)
    return translate.get(scope.protocol).request_from_ir(request)


def model_turn(gemini_body: dict) -> list[dict]:
    return next(c["parts"] for c in gemini_body["contents"] if c["role"] == "model")


# --- Gemini thoughtSignature


def test_a_gemini_thought_signature_is_put_back_on_its_function_call():
    cache = new_cache()
    scope = Issuer("gemini", "gemini-3-pro", GEMINI)
    answer = first_turn(cache, scope, CHAT, S.GEMINI_ANSWER, chat_request())
    assert S.GEMINI_SIGNATURE not in json.dumps(answer)  # Chat has no place for it

    sent = upstream_body(cache, scope, CHAT, chat_replay(chat_request(), answer))

    calls = [p for p in model_turn(sent) if "functionCall" in p]
    assert [c["functionCall"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert calls[0]["thoughtSignature"] == S.GEMINI_SIGNATURE
    assert "thoughtSignature" not in calls[1]  # Gemini signs the first call of a turn only


def test_a_signature_put_back_for_one_target_stays_off_the_request_the_next_target_gets():
    """The engine gives each target a copy of the messages and their part lists, not of the parts: a fallback to
    another Gemini provider must not find the first one's signature on them."""
    cache = new_cache()
    scope = Issuer("gemini", "gemini-3-pro", GEMINI)
    answer = first_turn(cache, scope, CHAT, S.GEMINI_ANSWER, chat_request())
    shared = translate.request_to_ir(CHAT, chat_replay(chat_request(), answer))
    for_first = dataclasses.replace(shared, messages=[dataclasses.replace(m, parts=list(m.parts))
                                                      for m in shared.messages])
    cache.restore(scope, for_first)
    assert S.GEMINI_SIGNATURE in json.dumps(translate.get(GEMINI).request_from_ir(for_first))
    assert S.GEMINI_SIGNATURE not in json.dumps(translate.get(GEMINI).request_from_ir(shared))


def test_without_the_cache_the_replayed_call_has_no_signature():
    """The baseline the cache fixes: what the client replays carries no signature of its own (only the bypass value
    Rotator signs an unsigned call with)."""
    cache = new_cache()
    scope = Issuer("gemini", "gemini-3-pro", GEMINI)
    answer = first_turn(cache, scope, CHAT, S.GEMINI_ANSWER, chat_request())
    request = translate.request_to_ir(CHAT, chat_replay(chat_request(), answer))
    sent = json.dumps(translate.get(GEMINI).request_from_ir(request))
    assert S.GEMINI_SIGNATURE not in sent and "skip_thought_signature_validator" in sent


def test_state_goes_back_only_to_the_provider_and_model_that_issued_it():
    cache = new_cache()
    issuer = Issuer("gemini", "gemini-3-pro", GEMINI)
    answer = first_turn(cache, issuer, CHAT, S.GEMINI_ANSWER, chat_request())
    replay = chat_replay(chat_request(), answer)
    for other in (Issuer("vertex", "gemini-3-pro", GEMINI), Issuer("gemini", "gemini-2.5-pro", GEMINI),
                  Issuer("gemini", "gemini-3-pro", GEMINI, client="team-b")):
        assert S.GEMINI_SIGNATURE not in json.dumps(upstream_body(cache, other, CHAT, replay))
    anthropic = Issuer("gemini", "gemini-3-pro", ANTHROPIC)  # same names, another protocol: nothing of Gemini's
    assert S.GEMINI_SIGNATURE not in json.dumps(upstream_body(cache, anthropic, CHAT, replay))


def test_state_expires_after_its_ttl():
    clock = FakeClock(0.0)
    cache = new_cache(clock)
    scope = Issuer("gemini", "gemini-3-pro", GEMINI)
    replay = chat_replay(chat_request(), first_turn(cache, scope, CHAT, S.GEMINI_ANSWER, chat_request()))
    clock.now += DEFAULT_TTL - 1
    assert S.GEMINI_SIGNATURE in json.dumps(upstream_body(cache, scope, CHAT, replay))
    clock.now += 1
    assert S.GEMINI_SIGNATURE not in json.dumps(upstream_body(cache, scope, CHAT, replay))


def test_the_oldest_conversation_goes_first_when_the_store_is_full():
    cache = new_cache(entries=2)
    scope = Issuer("gemini", "gemini-3-pro", GEMINI)
    first = chat_replay(chat_request(), first_turn(cache, scope, CHAT, S.GEMINI_ANSWER, chat_request()))
    for n in range(2):  # two more answers, with calls of other ids
        other = copy.deepcopy(S.GEMINI_ANSWER)
        for part in other["candidates"][0]["content"]["parts"]:
            if "functionCall" in part:
                part["functionCall"]["id"] = f"call-{n}-{part['functionCall']['name']}"
        first_turn(cache, scope, CHAT, other, chat_request())
    assert S.GEMINI_SIGNATURE not in json.dumps(upstream_body(cache, scope, CHAT, first))


def test_the_same_call_in_two_conversations_keeps_each_its_own_signature():
    """Gemini gives no call ids: Rotator makes them from the call, so two conversations may hold the same id."""
    cache = new_cache()
    scope = Issuer("gemini", "gemini-3-pro", GEMINI)
    replays = {}
    for question, signature in (("Weather in Paris?", "c2lnbmF0dXJlLWE="), ("Paris weather, please", "c2lnLWI=")):
        vendor = copy.deepcopy(S.GEMINI_ANSWER)
        vendor["candidates"][0]["content"]["parts"][2]["thoughtSignature"] = signature
        request = chat_request(question=question)
        replays[signature] = chat_replay(request, first_turn(cache, scope, CHAT, vendor, request))
    ids = {r["messages"][1]["tool_calls"][0]["id"] for r in replays.values()}
    assert len(ids) == 1  # the same id handed out twice
    for signature, replay in replays.items():
        sent = upstream_body(cache, scope, CHAT, replay)
        assert [p for p in model_turn(sent) if "functionCall" in p][0]["thoughtSignature"] == signature


# --- Anthropic thinking


def test_anthropic_thinking_and_its_signature_come_back_before_the_tool_use():
    cache = new_cache()
    scope = Issuer("anthropic", "claude-sonnet-4-5", ANTHROPIC)
    answer = first_turn(cache, scope, CHAT, S.ANTHROPIC_ANSWER, chat_request(thinking=True))
    assert S.ANTHROPIC_SIGNATURE not in json.dumps(answer)

    sent = upstream_body(cache, scope, CHAT, chat_replay(chat_request(thinking=True), answer))

    assistant = next(m for m in sent["messages"] if m["role"] == "assistant")
    assert assistant["content"][0] == {"type": "thinking", "thinking": S.THINKING,
                                       "signature": S.ANTHROPIC_SIGNATURE}
    assert [b["type"] for b in assistant["content"]] == ["thinking", "text", "tool_use", "tool_use"]
    assert sent["thinking"]["type"] == "enabled"


def test_without_a_signed_thinking_block_an_anthropic_request_goes_without_thinking():
    """Thinking is never forged: with the cache empty, the Chat client's reasoning text is not sent as thinking,
    and the request goes with thinking off (Anthropic would refuse the turn otherwise)."""
    cache = new_cache()
    scope = Issuer("anthropic", "claude-sonnet-4-5", ANTHROPIC)
    answer = first_turn(new_cache(), scope, CHAT, S.ANTHROPIC_ANSWER, chat_request(thinking=True))
    request = translate.request_to_ir(CHAT, chat_replay(chat_request(thinking=True), answer))

    restored = cache.restore(scope, request)
    sent = translate.get(ANTHROPIC).request_from_ir(request)

    assert restored.thinking_off and not restored.parts
    assert sent["thinking"] == {"type": "disabled"}
    assert all(b["type"] != "thinking" for m in sent["messages"] for b in m["content"])


def test_thinking_stays_on_when_the_last_assistant_turn_has_no_tool_call():
    cache = new_cache()
    scope = Issuer("anthropic", "claude-sonnet-4-5", ANTHROPIC)
    body = {**chat_request(thinking=True), "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "and?"}]}
    request = translate.request_to_ir(CHAT, body)
    assert not cache.restore(scope, request)
    request.model = scope.model
    assert translate.get(ANTHROPIC).request_from_ir(request)["thinking"]["type"] == "enabled"


def test_a_turn_without_tool_calls_is_found_by_its_text():
    cache = new_cache()
    scope = Issuer("anthropic", "claude-sonnet-4-5", ANTHROPIC)
    vendor = {**S.ANTHROPIC_ANSWER, "content": S.ANTHROPIC_ANSWER["content"][:2], "stop_reason": "end_turn"}
    answer = first_turn(cache, scope, CHAT, vendor, chat_request(thinking=True))
    message = answer["choices"][0]["message"]
    body = {**chat_request(thinking=True), "messages": [
        *chat_request()["messages"], {"role": "assistant", "content": message["content"] + "\n"},
        {"role": "user", "content": S.FOLLOW_UP}]}

    sent = upstream_body(cache, scope, CHAT, body)

    assert sent["messages"][1]["content"][0]["signature"] == S.ANTHROPIC_SIGNATURE


def test_the_same_words_after_another_question_get_no_thinking():
    cache = new_cache()
    scope = Issuer("anthropic", "claude-sonnet-4-5", ANTHROPIC)
    vendor = {**S.ANTHROPIC_ANSWER, "content": S.ANTHROPIC_ANSWER["content"][:2], "stop_reason": "end_turn"}
    answer = first_turn(cache, scope, CHAT, vendor, chat_request(thinking=True))
    body = {**chat_request(thinking=True), "messages": [
        {"role": "user", "content": "Something else entirely"},
        {"role": "assistant", "content": answer["choices"][0]["message"]["content"]},
        {"role": "user", "content": S.FOLLOW_UP}]}
    assert S.ANTHROPIC_SIGNATURE not in json.dumps(upstream_body(cache, scope, CHAT, body))


def test_redacted_thinking_comes_back_as_it_was():
    cache = new_cache()
    scope = Issuer("anthropic", "claude-sonnet-4-5", ANTHROPIC)
    vendor = copy.deepcopy(S.ANTHROPIC_ANSWER)
    vendor["content"].insert(1, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"})
    answer = first_turn(cache, scope, CHAT, vendor, chat_request(thinking=True))

    sent = upstream_body(cache, scope, CHAT, chat_replay(chat_request(thinking=True), answer))

    blocks = next(m for m in sent["messages"] if m["role"] == "assistant")["content"]
    assert blocks[:2] == [{"type": "thinking", "thinking": S.THINKING, "signature": S.ANTHROPIC_SIGNATURE},
                          {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}]


def test_a_turn_that_carries_its_own_signed_thinking_keeps_it():
    """An Anthropic client's own blocks (e.g. after a fallback to Anthropic) are not doubled or replaced."""
    cache = new_cache()
    scope = Issuer("anthropic", "claude-sonnet-4-5", ANTHROPIC)
    first_turn(cache, scope, CHAT, S.ANTHROPIC_ANSWER, chat_request())
    body = S.anthropic_replay(S.anthropic_request(), S.ANTHROPIC_ANSWER)
    sent = upstream_body(cache, scope, ANTHROPIC, body)
    assistant = next(m for m in sent["messages"] if m["role"] == "assistant")
    assert sum(b["type"] == "thinking" for b in assistant["content"]) == 1


# --- Responses reasoning items


def test_a_responses_reasoning_item_comes_back_before_its_calls():
    cache = new_cache()
    scope = Issuer("openai", "o4-mini", RESPONSES)
    answer = first_turn(cache, scope, ANTHROPIC, S.RESPONSES_ANSWER, S.anthropic_request())
    assert S.RESPONSES_ENCRYPTED not in json.dumps(answer)

    sent = upstream_body(cache, scope, ANTHROPIC, S.anthropic_replay(S.anthropic_request(), answer))

    kinds = [item.get("type") for item in sent["input"]]
    reasoning = sent["input"][kinds.index("reasoning")]
    assert reasoning["encrypted_content"] == S.RESPONSES_ENCRYPTED
    assert reasoning["id"] == "rs_68f1c0d2"
    assert kinds.index("reasoning") < kinds.index("function_call")


def test_what_is_put_back_is_named_by_the_key_whose_answer_it_came_from():
    """Each entry names the pooled key that answered (by fingerprint); `restore` lists what it put back by that
    key, as the marks the target's conversation reader names account-bound state by (the engine leaves out of a
    request what another key made). An entry from before, naming none, is put back naming none."""
    scope = Issuer("openai", "o4-mini", RESPONSES)
    for key, made in (("fp-of-key-a", {"fp-of-key-a": {content_mark(S.RESPONSES_ENCRYPTED)}}), ("", {})):
        cache = new_cache()
        answer = first_turn(cache, scope, ANTHROPIC, S.RESPONSES_ANSWER, S.anthropic_request(), key)
        request = translate.request_to_ir(ANTHROPIC, S.anthropic_replay(S.anthropic_request(), answer))
        request.model = scope.model
        restored = cache.restore(scope, request)
        assert restored.parts == 1 and restored.made == made
        sent = translate.get(RESPONSES).request_from_ir(request)
        assert set(READER.foreign(sent)) == {content_mark(S.RESPONSES_ENCRYPTED)}


def test_nothing_is_kept_from_an_answer_without_opaque_state():
    cache = new_cache()
    scope = Issuer("openai", "gpt-4.1", CHAT)
    first_turn(cache, scope, ANTHROPIC, S.CHAT_ANSWER, S.anthropic_request())
    plain = copy.deepcopy(S.ANTHROPIC_ANSWER)
    plain["content"] = plain["content"][1:]  # no thinking
    first_turn(cache, Issuer("anthropic", "claude", ANTHROPIC), CHAT, plain, chat_request())
    assert len(cache.store) == 0


def test_values_of_the_wrong_type_are_ignored_not_fatal():
    """Ids and texts that are not strings (a malformed client body or answer) neither raise nor match."""
    cache = new_cache()
    scope = Issuer("anthropic", "claude-sonnet-4-5", ANTHROPIC)
    answer = Answer(parts=[Reasoning("t", "sig", ANTHROPIC), Text(5), ToolCall(["x"], "f"), ToolCall(7, "g")])
    cache.capture(scope, answer, Request(messages=[Message("user", [Text(None), ToolResult(3)])]))
    request = Request(messages=[Message("tool", [ToolResult({"a": 1})]), Message("assistant", answer.parts)],
                      reasoning=ReasoningConfig(budget=2048))
    cache.restore(scope, request)


def test_a_store_holding_something_else_under_the_key_restores_nothing():
    cache = new_cache()
    scope = Issuer("gemini", "gemini-3-pro", GEMINI)
    replay = chat_replay(chat_request(), first_turn(cache, scope, CHAT, S.GEMINI_ANSWER, chat_request()))
    for key in list(cache.store._entries):
        cache.store.put(key, b"not json", 60)
    assert S.GEMINI_SIGNATURE not in json.dumps(upstream_body(cache, scope, CHAT, replay))


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__(1000, 1 << 20, FakeClock(0.0))
        self.gets = 0

    def get(self, key: str) -> bytes | None:
        self.gets += 1
        return super().get(key)


def test_turns_are_looked_up_only_at_a_target_whose_answers_left_state():
    """A route whose target has given no state (none yet, or none ever: no thinking) costs no lookup of each turn;
    a store not written by this cache alone (shared, or given full) is always read."""
    store = CountingStore()
    cache = FieldCache(store)
    scope = Issuer("anthropic", "claude-sonnet-4-5", ANTHROPIC)
    plain = copy.deepcopy(S.ANTHROPIC_ANSWER)
    plain["content"] = plain["content"][1:]  # no thinking
    replay = chat_replay(chat_request(), first_turn(cache, scope, CHAT, plain, chat_request()))
    upstream_body(cache, scope, CHAT, replay)
    assert store.gets == 0

    thought = first_turn(cache, scope, CHAT, S.ANTHROPIC_ANSWER, chat_request(thinking=True))
    upstream_body(cache, Issuer("vertex", "claude-sonnet-4-5", ANTHROPIC), CHAT, replay)
    assert store.gets == 0  # (another provider gave nothing)
    sent = upstream_body(cache, scope, CHAT, chat_replay(chat_request(thinking=True), thought))
    assert store.gets > 0 and sent["messages"][1]["content"][0]["signature"] == S.ANTHROPIC_SIGNATURE

    full = CountingStore()
    full.put("another worker's", b"{}", 60)
    upstream_body(FieldCache(full), scope, CHAT, replay)
    assert full.gets > 0


def test_only_a_request_that_thinks_leaves_state_at_a_vendor_whose_state_is_its_signed_thinking():
    """The engine keeps a translated answer whole for the cache (`Encoding.keep_answer`) only where it may
    carry state: Anthropic's is its signed thinking (no signature on a tool call), so a request with thinking off
    leaves none; Gemini signs its function calls whether it thinks or not; Chat keeps no state at all."""
    plain, thinking = (translate.request_to_ir(CHAT, chat_request(thinking=t)) for t in (False, True))
    assert not leaves_state(ANTHROPIC, plain) and leaves_state(ANTHROPIC, thinking)
    assert leaves_state(GEMINI, plain) and leaves_state(GEMINI, thinking)
    assert not leaves_state(CHAT, thinking)
    # (what a request without thinking is answered: no thinking block, so nothing the cache would have kept)
    answer = copy.deepcopy(S.ANTHROPIC_ANSWER)
    answer["content"] = answer["content"][1:]
    cache = FieldCache(CountingStore())
    first_turn(cache, Issuer("anthropic", "claude-sonnet-4-5", ANTHROPIC), CHAT, answer, chat_request())
    assert cache.store.bytes == 0

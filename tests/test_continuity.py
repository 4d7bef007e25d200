"""Responses continuity: a `previous_response_id` that the target cannot resolve is expanded into the whole
conversation from the responses Rotator served; bounded in size and age; `store: false` kept only as long as its
continuation needs it. (What the items are is the Responses registration's `continuity`; the keeping is the
engine's.)"""

import json

import pytest

import protocols
import protocols.translate as translate
from protocols.unified import Answer, Reasoning, Text, ToolCall
from rewrite.conversation.continuity import (
    CONSUMED_GRACE,
    DEFAULT_TTL,
    EPHEMERAL_TTL,
    Continuity,
    UnknownResponse,
)
from rewrite.state.kv import MemoryStore
from tests.support.timing import FakeClock

STORED = protocols.registered("openai_responses").continuity

QUESTION = "What is the weather in Paris?"
CALL = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}
RESULT = {"type": "function_call_output", "call_id": "call_1", "output": "18C"}
ANSWER = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "It is 18C."}]}
FOLLOW_UP = "And tomorrow?"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(0.0)


@pytest.fixture
def continuity(clock) -> Continuity:
    return Continuity(MemoryStore(1000, 1 << 20, clock))


def served_conversation(continuity: Continuity, provider: str = "deepseek", native: bool = False, store=True):
    """Two turns served: resp_1 answered a question with a tool call, resp_2 answered its result."""
    first = {"model": "gpt-5", "input": QUESTION, "instructions": "Be brief."}
    second = {"model": "gpt-5", "input": [RESULT], "previous_response_id": "resp_1"}
    if store is False:
        first["store"] = second["store"] = False
    continuity.record(STORED, "resp_1", first, [CALL], provider, native)
    continuity.record(STORED, "resp_2", second, [ANSWER], provider, native)


def third_turn(**extra) -> dict:
    return {"model": "gpt-5", "input": [{"role": "user", "content": FOLLOW_UP}], "previous_response_id": "resp_2",
            "instructions": "Answer in French.", **extra}


def test_a_chat_target_gets_the_whole_conversation(continuity):
    served_conversation(continuity)

    expansion = continuity.expand(STORED, third_turn(), "deepseek", resolves=False)

    body = expansion.body
    assert "previous_response_id" not in body
    assert expansion.replayed == 2
    assert body["input"] == [{"type": "message", "role": "user", "content": QUESTION}, CALL, RESULT, ANSWER,
                             {"role": "user", "content": FOLLOW_UP}]
    assert body["instructions"] == "Answer in French."  # instructions are not inherited
    chat = translate.translate_request(body, "openai_responses", "openai_chat")
    assert [m["role"] for m in chat["messages"]] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert chat["messages"][2]["tool_calls"][0]["id"] == "call_1"


def test_a_request_without_previous_response_id_is_left_alone(continuity):
    body = {"model": "gpt-5", "input": QUESTION}
    assert continuity.expand(STORED, body, "deepseek", resolves=False).body is body


def test_an_unknown_previous_response_is_openais_own_400_for_a_target_that_cannot_resolve_it(continuity):
    with pytest.raises(UnknownResponse) as caught:
        continuity.expand(STORED, third_turn(), "anthropic", resolves=False)
    status, body = STORED.unknown(caught.value.response_id)
    error = json.loads(body)["error"]
    assert status == 400
    assert error["code"] == "previous_response_not_found"
    assert error["param"] == "previous_response_id"
    assert error["type"] == "invalid_request_error"
    assert "resp_2" in error["message"]


def test_an_unknown_previous_response_goes_as_it_is_to_a_responses_provider(continuity):
    body = third_turn()
    assert continuity.expand(STORED, body, "openai", resolves=True).body is body


def test_a_response_stored_by_a_responses_provider_is_left_to_it(continuity):
    served_conversation(continuity, provider="openai", native=True)
    body = third_turn()
    assert continuity.expand(STORED, body, "openai", resolves=True).body is body
    # Another Responses provider, or a target of another protocol, never saw it.
    for provider, responses in (("azure", True), ("anthropic", False)):
        expanded = continuity.expand(STORED, body, provider, resolves=responses).body
        assert "previous_response_id" not in expanded and len(expanded["input"]) == 5


def test_a_stored_response_names_the_key_whose_account_holds_it(continuity):
    """(each entry records the pooled key that served it, by fingerprint: the pick goes there for a continuation
    whose binding was lost.)"""
    continuity.record(STORED, "resp_1", {"input": QUESTION}, [CALL], "openai", native=True, key="fp-of-key-a")
    continuity.record(STORED, "resp_2", {"input": QUESTION, "store": False}, [CALL], "openai", native=True,
                      key="fp-of-key-b")
    continuity.record(STORED, "resp_3", {"input": QUESTION}, [CALL], "anthropic", native=False, key="fp-of-key-c")
    assert continuity.holder(STORED, {"previous_response_id": "resp_1"}, "openai") == "fp-of-key-a"
    assert continuity.holder(STORED, {"previous_response_id": "resp_1"}, "azure") == ""  # (another provider's)
    assert continuity.holder(STORED, {"previous_response_id": "resp_2"}, "openai") == ""  # (not stored there)
    assert continuity.holder(STORED, {"previous_response_id": "resp_3"}, "anthropic") == ""  # (Rotator's, not its)
    assert continuity.holder(STORED, {"previous_response_id": "resp_9"}, "openai") == ""
    assert continuity.holder(STORED, {"input": QUESTION}, "openai") == ""


def test_an_entry_from_before_keys_were_recorded_still_reads_its_key_unknown(continuity):
    old = {"previous": None, "input": [{"role": "user", "content": QUESTION}], "output": [CALL],
           "provider": "openai", "native": True, "stored": True}  # (as Rotator kept it before)
    continuity.store.put(Continuity._key("", "resp_1"), json.dumps(old).encode(), 60)
    body = {"input": [RESULT], "previous_response_id": "resp_1"}
    assert continuity.holder(STORED, body, "openai") == ""
    assert continuity.expand(STORED, body, "anthropic", resolves=False).body["input"][1] == CALL


def test_an_entry_a_newer_worker_wrote_with_fields_this_one_does_not_know_still_reads(continuity):
    newer = {"previous": None, "input": [{"role": "user", "content": QUESTION}], "output": [CALL],
             "provider": "openai", "native": True, "stored": True, "key": "fp-of-key-a", "made_at": 1.5}
    continuity.store.put(Continuity._key("", "resp_1"), json.dumps(newer).encode(), 60)
    body = {"input": [RESULT], "previous_response_id": "resp_1"}
    assert continuity.holder(STORED, body, "openai") == "fp-of-key-a"
    assert continuity.expand(STORED, body, "anthropic", resolves=False).body["input"][1] == CALL


def test_the_lineage_is_expanded_down_to_the_newest_response_the_provider_holds(continuity):
    continuity.record(STORED, "resp_1", {"input": QUESTION}, [CALL], "openai", native=True)
    continuity.record(STORED, "resp_2", {"input": [RESULT], "previous_response_id": "resp_1"}, [ANSWER], "anthropic",
                      native=False)

    body = continuity.expand(STORED, third_turn(), "openai", resolves=True).body

    assert body["previous_response_id"] == "resp_1"
    assert body["input"] == [RESULT, ANSWER, {"role": "user", "content": FOLLOW_UP}]


def test_a_native_response_with_store_false_is_expanded_even_for_its_own_provider(continuity):
    served_conversation(continuity, provider="openai", native=True, store=False)
    body = continuity.expand(STORED, third_turn(), "openai", resolves=True).body
    assert "previous_response_id" not in body and len(body["input"]) == 5


def test_a_lineage_that_expired_is_not_found(continuity, clock):
    served_conversation(continuity)
    clock.now += DEFAULT_TTL - 1
    continuity.expand(STORED, third_turn(), "deepseek", resolves=False)
    clock.now += 1
    with pytest.raises(UnknownResponse):
        continuity.expand(STORED, third_turn(), "deepseek", resolves=False)


def test_a_broken_lineage_is_not_found_rather_than_cut_short(clock):
    store = MemoryStore(1000, 1 << 20, clock)
    continuity = Continuity(store)
    served_conversation(continuity)
    store.delete(continuity._key("", "resp_1"))  # evicted
    with pytest.raises(UnknownResponse) as caught:
        continuity.expand(STORED, third_turn(), "deepseek", resolves=False)
    assert caught.value.response_id == "resp_1"


def test_the_store_bounds_what_is_kept(clock):
    continuity = Continuity(MemoryStore(1000, 1200, clock))
    served_conversation(continuity)
    continuity.record(STORED, "resp_big", {"input": "x" * 1300}, [], "deepseek", native=False)
    with pytest.raises(UnknownResponse):
        continuity.expand(STORED, {"input": "more", "previous_response_id": "resp_big"}, "deepseek", False)
    continuity.expand(STORED, third_turn(), "deepseek", resolves=False)  # the rest is still there


def test_lineages_are_per_client(continuity):
    continuity.record(STORED, "resp_1", {"input": QUESTION}, [ANSWER], "deepseek", native=False, client="team-a")
    body = {"input": FOLLOW_UP, "previous_response_id": "resp_1"}
    assert len(continuity.expand(STORED, body, "deepseek", False, client="team-a").body["input"]) == 3
    with pytest.raises(UnknownResponse):
        continuity.expand(STORED, body, "deepseek", False, client="team-b")


def test_malformed_requests_are_left_for_the_translator_to_refuse(continuity):
    served_conversation(continuity)
    with pytest.raises(UnknownResponse):
        continuity.expand(STORED, {"input": "x", "previous_response_id": 42}, "deepseek", resolves=False)
    body = {"input": "x", "previous_response_id": ["resp_2"]}
    assert continuity.expand(STORED, body, "openai", resolves=True).body is body  # the vendor answers it
    odd = continuity.expand(STORED, {"input": {"role": "user"}, "previous_response_id": "resp_2"}, "deepseek", False)
    assert odd.body["input"][-1] == {"role": "user"}  # kept: request_to_ir judges it


# --- store: false


def test_a_store_false_response_lives_only_a_short_while_unless_continued(continuity, clock):
    served_conversation(continuity, store=False)
    clock.now += EPHEMERAL_TTL
    with pytest.raises(UnknownResponse):
        continuity.expand(STORED, third_turn(), "deepseek", resolves=False)


def test_a_continued_store_false_response_hands_its_items_over_and_goes(continuity, clock):
    served_conversation(continuity, store=False)  # resp_2 took resp_1's items over
    clock.now += CONSUMED_GRACE
    assert continuity._load("", "resp_1") is None
    body = continuity.expand(STORED, third_turn(store=False), "deepseek", resolves=False).body
    assert body["input"][:4] == [{"type": "message", "role": "user", "content": QUESTION}, CALL, RESULT, ANSWER]


def test_a_continued_store_false_response_serves_a_request_sent_again_within_the_grace(continuity, clock):
    served_conversation(continuity, store=False)
    clock.now += CONSUMED_GRACE - 1
    again = {"model": "gpt-5", "input": [RESULT], "previous_response_id": "resp_1"}
    assert len(continuity.expand(STORED, again, "deepseek", resolves=False).body["input"]) == 3


def test_a_stored_response_keeps_the_store_false_one_it_continued_only_through_itself(continuity, clock):
    continuity.record(STORED, "resp_1", {"input": QUESTION, "store": False}, [CALL], "deepseek", native=False)
    continuity.record(STORED, "resp_2", {"input": [RESULT], "previous_response_id": "resp_1"}, [ANSWER], "deepseek",
                      native=False)
    clock.now += EPHEMERAL_TTL * 2
    body = continuity.expand(STORED, third_turn(), "deepseek", resolves=False).body
    assert len(body["input"]) == 5


# --- what is recorded


def test_an_id_that_names_its_own_previous_response_is_not_recorded(continuity):
    continuity.record(STORED, "resp_rotator", {"input": "a", "previous_response_id": "resp_rotator"}, [], "x", False)
    assert continuity._load("", "resp_rotator") is None


def test_output_items_replay_text_calls_and_only_responses_own_reasoning():
    answer = Answer(parts=[
        Reasoning("thinking", "sig-anthropic", "anthropic_messages"),
        Reasoning("summary", "gAAAA-encrypted", "openai_responses", id="rs_1"),
        Text("It is "), Text("18C."),
        ToolCall("call_2", "get_time", ""),
    ])
    assert STORED.output_items(answer) == [
        {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "summary"}],
         "encrypted_content": "gAAAA-encrypted"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "It is 18C."}]},
        {"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": "{}"},
    ]

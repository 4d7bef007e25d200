"""Stream translation, every pair: recorded-style upstream streams in one protocol, read by another protocol's
official SDK stream parser: whole, at every byte split, cut at every event, with errors and heartbeats."""

import json

import anthropic
import openai
import pytest
from google.genai import errors as genai_errors
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat._completions import ChatCompletionStreamState
from openai.types.responses import ResponseFailedEvent, ResponseUsage

import protocols
import protocols.translate as translate
from protocols import ENDING_ERROR, SSEParser
from protocols.unified import GENERATED_TOOL_ID_PREFIX, Request, ToolIds
from protocols.unified_stream import Finish, TextDelta, ToolArgumentsDelta, ToolCallEnd, ToolCallStart
from tests.support import fake_vendor, samples
from tests.support import translate_samples as S
from tests.support.sdk_clients import anthropic_final, chat_chunks, gemini_chunks, responses_events
from tests.support.sdk_types import exactly
from tests.support.streams import parse
from tests.support.translate_sdk import view
from tests.support.translation_streams import STREAMS

CLIENTS = ("openai_chat", "openai_responses", "anthropic_messages", "gemini")
PAIRS = [(name, client) for name, (source, _) in STREAMS.items() for client in CLIENTS if client != source]
REQUEST = Request(model="client-model", include_usage=True)


def translator(source: str, client: str, request: Request = REQUEST, ids: ToolIds | None = None):
    return translate.stream_translator(source, client, request, ids)


def translated(name: str, client: str) -> bytes:
    source, body = STREAMS[name]
    tr = translator(source, client)
    out = b"".join(tr.feed(e) for e in parse(body))
    assert tr.complete and not tr.failed
    return out


def client_view(client: str, body: bytes) -> dict:
    """What the client's official SDK stream parser makes of the bytes, in common terms."""
    if client == "openai_chat":
        state = ChatCompletionStreamState()
        for chunk in chat_chunks(body):
            state.handle_chunk(chunk)
        return view(client, state.current_completion_snapshot)
    if client == "openai_responses":
        events = responses_events(body)
        return view(client, next(e.response for e in reversed(events) if hasattr(e, "response")))
    if client == "anthropic_messages":
        return view(client, anthropic_final(body)[1])
    return view(client, gemini_chunks(body))


def source_view(name: str) -> dict:
    source, body = STREAMS[name]
    return client_view(source, body)


def names_and_arguments(seen: dict) -> list:
    return [(name, args) for _, name, args in seen["calls"]]


@pytest.mark.parametrize(("name", "client"), PAIRS)
def test_a_stream_reads_the_same_in_the_clients_protocol(name, client):
    expected, seen = source_view(name), client_view(client, translated(name, client))
    assert seen["text"] == expected["text"]
    assert seen["reasoning"] == expected["reasoning"]
    assert names_and_arguments(seen) == names_and_arguments(expected)
    assert seen["finish"] == expected["finish"]  # tool use in the client's terms when there are calls
    assert seen["usage"] == expected["usage"]  # each token counted once
    if STREAMS[name][0] != "gemini":  # Gemini gives no ids: see test_gemini_calls_get_stable_ids
        assert [c[0] for c in seen["calls"]] == [c[0] for c in expected["calls"]]


@pytest.mark.parametrize(("name", "client"), PAIRS)
def test_every_byte_split_gives_the_same_stream(name, client):
    """Fed one byte at a time (every split point at once), the translation is the one of the whole stream, and
    it comes out as the upstream's events complete, not at the end."""
    source, body = STREAMS[name]
    whole = translated(name, client)
    parser, tr = SSEParser(), translator(source, client)
    out: list[bytes] = []
    for i in range(len(body)):
        out += [tr.feed(e) for e in parser.feed(body[i:i + 1])]
    out += [tr.feed(e) for e in parser.close()]
    assert b"".join(out) == whole
    assert sum(1 for piece in out if piece) >= 2  # incremental: the text test below checks each delta


def cuts(name: str) -> list[int]:
    return list(range(len(parse(STREAMS[name][1]))))


def finish_said(source: str, events: list) -> bool:
    """Whether the upstream had said how it finished before the cut (only its terminator is then missing)."""
    payloads = [json.loads(e.data) for e in events if e.data and e.data.startswith("{")]
    if source == "openai_chat":
        return any(c.get("finish_reason") for p in payloads for c in p.get("choices") or ())
    if source == "anthropic_messages":
        return any(p["type"] == "message_delta" for p in payloads)
    return False  # Responses and Gemini finish with their last event


@pytest.mark.parametrize(("name", "client"), PAIRS)
def test_a_stream_cut_after_any_event_ends_as_truncated_in_the_clients_protocol(name, client):
    source, body = STREAMS[name]
    full = source_view(name)
    complete_calls = names_and_arguments(full)
    for k in cuts(name):
        tr = translator(source, client)
        out = b"".join(tr.feed(e) for e in parse(body)[:k])
        if not tr.started:
            continue  # the engine retries such a stream on another key: nothing reached the client
        out += tr.end()
        assert tr.complete and not tr.failed
        seen = client_view(client, out)
        assert full["text"].startswith(seen["text"]), k
        if finish_said(source, parse(body)[:k]):
            assert seen["finish"] == full["finish"], k  # only the terminator was missing
        else:
            assert seen["finish"] == "length", k  # never "tool_calls" for a stream that was cut
        if client in ("openai_responses", "gemini"):  # these report only calls whose arguments are whole
            assert all(call in complete_calls for call in names_and_arguments(seen)), k
        assert tr.end() == b""


@pytest.mark.parametrize(("name", "client"), PAIRS)
def test_a_cut_stream_can_end_with_the_clients_error_instead(name, client):
    source, body = STREAMS[name]
    raises = {"openai_chat": openai.APIError, "openai_responses": openai.APIError,
              "anthropic_messages": anthropic.APIStatusError, "gemini": genai_errors.ServerError}[client]
    for k in cuts(name)[1::3]:
        tr = translator(source, client)
        out = b"".join(tr.feed(e) for e in parse(body)[:k]) + tr.end(ENDING_ERROR)
        assert tr.complete and tr.failed
        with pytest.raises(raises, match="truncated"):
            client_view(client, out)


@pytest.mark.parametrize(("name", "client"), PAIRS)
def test_the_first_token_is_decided_as_the_clients_own_repairer_decides_it(name, client):
    """Translated bytes fed to the client protocol's native Repairer: it sees its first token exactly when the
    translator says `started` (so first-token retries and the idle clock behave as on a native stream). A Gemini
    client's tool call goes out whole, so there the translator may start first."""
    source, body = STREAMS[name]
    tr = translator(source, client)
    native = protocols.get(client).repairer({"model": "client-model", "stream": True})
    parser = SSEParser()
    for event in parse(body):
        for out_event in parser.feed(tr.feed(event)):
            native.feed(out_event)
        if client == "gemini" and tr.started and not native.started:
            continue
        assert tr.started == native.started, event.raw[:80]
        assert tr.complete == native.complete, event.raw[:80]


@pytest.mark.parametrize(("name", "client"), [(n, c) for n, c in PAIRS if protocols.get(c).heartbeat])
def test_heartbeats_between_translated_events_change_nothing_for_the_client(name, client):
    beat = protocols.get(client).heartbeat
    with_beats = b"".join(beat + e.raw for e in parse(translated(name, client)))
    assert client_view(client, with_beats) == client_view(client, translated(name, client))


UPSTREAM_ERRORS = {
    "openai_chat": fake_vendor.stream_error_event("chat", 0),
    "openai_responses": fake_vendor.stream_error_event("responses", 3),
    "anthropic_messages": fake_vendor.stream_error_event("anthropic", 0),
    "gemini": fake_vendor.stream_error_event("gemini", 0),
}


@pytest.mark.parametrize(("name", "client"), PAIRS)
def test_an_upstream_error_in_the_stream_reaches_the_client_as_its_error(name, client):
    source, body = STREAMS[name]
    raises = {"openai_chat": openai.APIError, "openai_responses": openai.APIError,
              "anthropic_messages": anthropic.APIStatusError, "gemini": genai_errors.ServerError}[client]
    tr = translator(source, client)
    before = parse(body)[:min(3, len(parse(body)) - 1)]
    out = b"".join(tr.feed(e) for e in before + parse(UPSTREAM_ERRORS[source]))
    assert tr.started and tr.complete and tr.failed
    with pytest.raises(raises, match="overloaded|Overloaded"):
        client_view(client, out)


def test_chat_sends_a_tool_calls_id_and_name_once_and_the_usage_chunk_only_when_asked():
    out = translated("anthropic_tool_use", "openai_chat")
    fragments = [d["choices"][0]["delta"]["tool_calls"][0] for d in map(json.loads, _data(out)[:-1])
                 if d.get("choices") and "tool_calls" in d["choices"][0]["delta"]]
    assert [("id" in f, "name" in f.get("function", {})) for f in fragments] == [(True, True)] + [(False, False)] * 2
    assert _data(out)[-1] == "[DONE]" and json.loads(_data(out)[-2])["usage"]["prompt_tokens"] == 472
    tr = translator("anthropic_messages", "openai_chat", Request(model="m"))
    quiet = b"".join(tr.feed(e) for e in parse(samples.ANTHROPIC_TOOL_USE))
    assert all(not json.loads(d).get("usage") for d in _data(quiet)[:-1])


def _data(out: bytes) -> list[str]:
    return [e.data for e in parse(out) if e.data is not None]


def test_responses_sequence_numbers_are_consecutive_and_items_have_their_lifecycle():
    for name, (source, _) in STREAMS.items():
        if source == "openai_responses":
            continue
        events = [json.loads(d) for d in _data(translated(name, "openai_responses"))]
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        added = [e["output_index"] for e in events if e["type"] == "response.output_item.added"]
        done = [e["output_index"] for e in events if e["type"] == "response.output_item.done"]
        assert sorted(added) == sorted(done) == list(range(len(added)))
        assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"


def test_anthropic_blocks_open_and_close_one_at_a_time():
    for name, (source, _) in STREAMS.items():
        if source == "anthropic_messages":
            continue
        events = [json.loads(d) for d in _data(translated(name, "anthropic_messages"))]
        blocks = [(e["type"], e["index"]) for e in events if e["type"] in ("content_block_start", "content_block_stop")]
        n = len(blocks) // 2
        assert blocks == [pair for i in range(n) for pair in (("content_block_start", i), ("content_block_stop", i))]
        assert [e["type"] for e in events][-2:] == ["message_delta", "message_stop"]


def test_chat_fragments_that_go_back_to_an_earlier_call_still_reach_an_anthropic_client_whole():
    def chunk(delta, finish=None):
        return fake_vendor.sse({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    body = b"".join([
        chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                                                    "function": {"name": "get_weather", "arguments": '{"ci'}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                               "function": {"name": "get_time", "arguments": '{"tz": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": '"Europe/Paris"}'}}]}),
        chunk({}, "tool_calls"), b"data: [DONE]\n\n",
    ])
    tr = translator("openai_chat", "anthropic_messages")
    seen = client_view("anthropic_messages", b"".join(tr.feed(e) for e in parse(body)))
    assert seen["calls"] == [("call_a", "get_weather", S.WEATHER_ARGS), ("call_b", "get_time", S.TIME_ARGS)]


def test_gemini_calls_get_stable_ids_recorded_by_the_id_hook():
    ids = ToolIds()
    tr = translator("gemini", "openai_chat", ids=ids)
    seen = client_view("openai_chat", b"".join(tr.feed(e) for e in parse(S.GEMINI_PARALLEL_CALLS)))
    handed_out = [c[0] for c in seen["calls"]]
    assert all(i.startswith(GENERATED_TOOL_ID_PREFIX) for i in handed_out) and len(set(handed_out)) == 2
    assert ids.vendor_ids == dict.fromkeys(handed_out)  # Rotator made them up: no vendor id behind them
    # The same calls read from a non-stream answer, or replayed in the client's next request, get the same ids.
    chunks = [json.loads(d) for d in _data(S.GEMINI_PARALLEL_CALLS)]
    answer = translate.get("gemini").answer_to_ir({**chunks[-1], "candidates": [
        {**chunks[-1]["candidates"][0]}]})
    assert [c.id for c in answer.tool_calls()] == handed_out
    follow_up = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}, {"role": "model", "parts": [
        p for p in chunks[-1]["candidates"][0]["content"]["parts"]]}]}
    replayed = translate.request_to_ir("gemini", follow_up, "g")
    assert [p.id for p in replayed.messages[-1].parts] == handed_out


def test_a_gemini_signature_on_a_call_is_handed_to_the_hook_and_kept_for_gemini_only():
    decoder = translate.get("gemini").decoder()
    events = [e for event in parse(samples.GEMINI_FUNCTION_CALL) for e in decoder.feed(event)]
    start = next(e for e in events if isinstance(e, ToolCallStart))
    assert (start.name, start.origin) == ("get_weather", "gemini") and start.signature.startswith("BwgJ")
    assert [type(e) for e in events[events.index(start):]][:3] == [ToolCallStart, ToolArgumentsDelta, ToolCallEnd]
    assert isinstance(events[-1], Finish)
    for client in ("openai_chat", "openai_responses", "anthropic_messages"):
        assert b"BwgJ" not in translated("gemini_function_call", client)


def test_text_goes_out_as_each_upstream_delta_arrives():
    for name, (source, body) in STREAMS.items():
        for client in CLIENTS:
            if client == source:
                continue
            probe, tr = translate.get(source).decoder(), translator(source, client)
            for event in parse(body):
                texts = [e.text for e in probe.feed(event) if isinstance(e, TextDelta) and e.text]
                out = tr.feed(event)
                assert all(json.dumps(text)[1:-1].encode() in out for text in texts), (name, client)


EVENT_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "choices", "delta", "index", "content", "tool_calls", "function", "arguments",
                         "id", "name", "usage", "error", "candidates", "parts", "functionCall", "args", "message",
                         "content_block", "item", "output_index", "response", "finish_reason", "finishReason"]),
        inner, max_size=5),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(payloads=st.lists(EVENT_JSON, max_size=6), source=st.sampled_from(CLIENTS), client=st.sampled_from(CLIENTS),
       name=st.sampled_from(["content_block_delta", "message_start", "response.output_item.added", None]))
def test_malformed_upstream_events_never_break_the_translation(payloads, source, client, name):
    tr = translator(source, client)
    for payload in payloads:
        if isinstance(payload, str):  # raw non-JSON data; a line break would make it two SSE fields
            payload = payload.replace("\r", " ").replace("\n", " ")
        tr.feed(parse(fake_vendor.sse(payload, name))[0])
    tr.end()
    assert tr.complete


@pytest.mark.parametrize("source", CLIENTS)
@pytest.mark.parametrize("client", CLIENTS)
def test_ids_names_and_texts_of_the_wrong_type_are_ignored_not_fatal(source, client):
    wrong = {"openai_chat": [{"id": 7, "model": 8, "created": "x", "choices": [{"index": 0, "delta": {
                "content": 5, "tool_calls": [{"index": 0, "id": 9, "function": {"name": 3, "arguments": 4}}]}}]}],
             "openai_responses": [{"type": "response.created", "response": {"id": 7, "model": 8, "created_at": "x"}},
                                  {"type": "response.output_item.added", "output_index": 0,
                                   "item": {"type": "function_call", "call_id": 9, "name": 3, "arguments": 4}},
                                  {"type": "response.output_text.delta", "output_index": 1, "delta": 5}],
             "anthropic_messages": [{"type": "message_start", "message": {"id": 7, "model": 8}},
                                    {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "tool_use", "id": 9, "name": 3}},
                                    {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "input_json_delta", "partial_json": 4}}],
             "gemini": [{"responseId": 7, "modelVersion": 8, "candidates": [{"content": {"parts": [
                 {"text": 5}, {"functionCall": {"name": 3, "id": 9, "args": {}}}]}}]}]}[source]
    tr = translator(source, client)
    for payload in wrong:
        tr.feed(parse(fake_vendor.sse(payload, payload.get("type")))[0])
    assert tr.end() and tr.complete


@pytest.mark.parametrize(("name", "client"), PAIRS)
def test_a_truncated_ending_counts_the_output_sent_when_the_upstream_reported_less(name, client):
    """Like a native ending: a usage the vendor's SDK reads, its output at least one token per delta sent (an upstream
    such as Chat reports usage only at its end, so a cut stream had said none)."""
    source, body = STREAMS[name]
    for k in cuts(name):
        tr = translator(source, client)
        out = b"".join(tr.feed(e) for e in parse(body)[:k])
        if not tr.started or finish_said(source, parse(body)[:k]):
            continue  # (a finish said before the cut ends the stream as the upstream said it)
        sent = tr.encoder.pieces
        out += tr.end()
        seen = client_view(client, out)
        assert sent > 0 or not (seen["text"] or seen["reasoning"]), k
        assert seen["usage"] is not None and seen["usage"][2] >= sent, k


@pytest.mark.parametrize("name", [name for name, (source, _) in STREAMS.items() if source != "openai_responses"])
def test_a_responses_client_gets_response_failed_with_a_usage_after_the_error(name):
    """As the vendor does after an `error` event: `response.failed`, with the error and the usage so far."""
    source, body = STREAMS[name]
    for k in cuts(name)[1::3]:
        tr = translator(source, "openai_responses")
        out = b"".join(tr.feed(e) for e in parse(body)[:k])
        sent = tr.encoder.pieces
        out += tr.end(ENDING_ERROR)
        error, failed = [json.loads(e.data) for e in parse(out)[-2:]]
        assert (error["type"], failed["type"]) == ("error", "response.failed"), k
        assert failed["sequence_number"] == error["sequence_number"] + 1
        ResponseFailedEvent.model_validate(failed)
        response = failed["response"]
        assert response["error"] == {"code": "server_error", "message": "upstream stream truncated"}
        assert exactly(ResponseUsage, response["usage"]).output_tokens >= sent, k

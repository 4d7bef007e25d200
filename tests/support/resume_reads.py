"""What a client makes of a resumed answer: the official SDK's own object for it (its stream accumulator's, or the
non-stream answer folded from the stream, as the engine folds it), its text pieces, and, for a Responses stream, the
wire's own bookkeeping (each `done` says what its deltas said; the final output is what was streamed)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from openai.lib.streaming.chat._completions import ChatCompletionStreamState

import protocols
from tests.support.sdk_clients import anthropic_final, chat_chunks, gemini_chunks, responses_events
from tests.support.streams import aggregate, parse, payloads
from tests.support.translate_sdk import read


def client_answer(protocol: str, out: bytes, streamed: bool, request: dict) -> Any:
    """The SDK's object for the answer the client received as `out`: streamed, its stream helper's final
    snapshot; else the non-stream answer folded from `out`, as the SDK parses it."""
    if not streamed:
        folded = aggregate(protocols.get(protocol), parse(out), request).result()
        return read(protocol, json.dumps(folded).encode())
    if protocol == "openai_chat":
        state = ChatCompletionStreamState()
        for chunk in chat_chunks(out):
            state.handle_chunk(chunk)
        return state.current_completion_snapshot
    if protocol == "openai_responses":
        return next(e.response for e in reversed(responses_events(out)) if hasattr(e, "response"))
    if protocol == "anthropic_messages":
        return anthropic_final(out)[1]
    return gemini_chunks(out)


def text_pieces(protocol: str, answer: Any) -> list[str]:
    """The answer's texts as the client holds them apart: Chat's content, each Responses output_text part, each
    Anthropic text block; Gemini's text parts are deltas of one text, joined."""
    if protocol == "openai_chat":
        content = answer.choices[0].message.content
        return [content] if content else []
    if protocol == "openai_responses":
        return [part.text for item in answer.output if item.type == "message" for part in item.content
                if part.type == "output_text"]
    if protocol == "anthropic_messages":
        return [block.text for block in answer.content if block.type == "text"]
    chunks = answer if isinstance(answer, list) else [answer]
    parts = [part for chunk in chunks if chunk.candidates and chunk.candidates[0].content
             for part in chunk.candidates[0].content.parts or ()]
    texts = [part.text for part in parts if part.text is not None and not part.thought]
    return ["".join(texts)] if texts else []


def assert_responses_stream_consistent(out: bytes) -> None:
    """One Responses stream's own bookkeeping: sequence numbers and output indexes in order, one `done` of each
    kind per part and item, each saying what its deltas said, and the final response's output the items streamed
    (the done ones as they were done; an open one, in an honest ending, with the text its deltas said)."""
    events = payloads(out)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    added = [e["output_index"] for e in events if e["type"] == "response.output_item.added"]
    assert added == list(range(len(added)))
    deltas: dict[tuple[int, int], str] = defaultdict(str)
    arguments: dict[int, str] = defaultdict(str)
    texts: dict[tuple[int, int], str] = {}
    parts: dict[tuple[int, int], str] = {}
    items: dict[int, dict] = {}
    for e in events:
        kind, key = e["type"], (e.get("output_index"), e.get("content_index"))
        if kind == "response.output_text.delta":
            deltas[key] += e["delta"]
        elif kind == "response.function_call_arguments.delta":
            arguments[e["output_index"]] += e["delta"]
        elif kind == "response.output_text.done":
            assert key not in texts, f"a second output_text.done for {key}"
            texts[key] = e["text"]
        elif kind == "response.content_part.done":
            assert key not in parts, f"a second content_part.done for {key}"
            parts[key] = e["part"]["text"]
        elif kind == "response.output_item.done":
            assert e["output_index"] not in items, f"a second output_item.done for {e['output_index']}"
            items[e["output_index"]] = e["item"]
    assert texts == {key: deltas.get(key, "") for key in texts}, "an output_text.done that is not its deltas"
    assert parts == {key: texts.get(key) for key in parts}, "a content_part.done that is not its text's done"
    done_parts = {key for key in deltas if key[0] in items}
    assert done_parts <= set(texts) and done_parts <= set(parts), "an item done without its parts' done"
    output = events[-1]["response"]["output"]
    assert len(output) == len(added)
    for index, item in enumerate(output):
        if index in items:
            assert item == items[index], f"output {index} is not the item streamed"
        if item["type"] == "message":
            said = [deltas.get((index, number), "") for number in range(len(item["content"]))]
            assert [part.get("text") for part in item["content"]] == said, f"output {index} is not its deltas"
        elif item["type"] == "function_call" and index in arguments:
            assert item["arguments"] == arguments[index]

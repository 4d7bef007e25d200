"""The lineage (protocols/evidence.py): in every protocol, turn n's deepest link is among turn n+1's links,
whichever way the client writes what it sends again (a string or a text block, thinking kept or dropped, cache
markers moved, signatures rewritten), so the deepest link of the last turn finds the conversation; unrelated
conversations share no link past their common root; only the last DEPTH messages are read."""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

import protocols
from protocols.evidence import DEPTH

NAMES = ("openai_chat", "openai_responses", "anthropic_messages", "gemini")
TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=300) | st.text("ab \n", min_size=90, max_size=400)


@dataclass
class Exchange:
    user: str
    answer: str
    call: tuple[str, str, str] | None  # (id, arguments, result): the answer asked for a tool


EXCHANGE = st.builds(Exchange, TEXT, TEXT, st.none() | st.tuples(st.uuids().map(str), TEXT, TEXT))
CONVERSATION = st.lists(EXCHANGE, min_size=2, max_size=6)


def links(name: str, body: dict) -> tuple[int, ...]:
    reader = protocols.registered(name).evidence
    assert reader is not None
    return reader.read([], body).links


# Each builder writes the request of the turn that asks exchange `k`: the exchanges before it answered, then its user
# message; `rng` picks, afresh for every request, among the ways a client writes the same conversation.


def anthropic(system: str, exchanges: list[Exchange], k: int, rng: random.Random) -> dict:
    def text(t: str) -> object:
        return t if rng.random() < 0.5 else [{"type": "text", "text": t}]

    messages: list[dict] = []
    for ex in exchanges[:k]:
        messages.append({"role": "user", "content": text(ex.user)})
        answer: list[dict] = [{"type": "thinking", "thinking": "hm", "signature": str(rng.random())}] \
            if rng.random() < 0.5 else []
        answer.append({"type": "text", "text": ex.answer})
        if ex.call:
            answer.append({"type": "tool_use", "id": f"toolu_{ex.call[0]}", "name": "run", "input": {"a": ex.call[1]}})
        messages.append({"role": "assistant", "content": answer})
        if ex.call:
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": f"toolu_{ex.call[0]}", "content": ex.call[2]}]})
    messages.append({"role": "user", "content": [{"type": "text", "text": exchanges[k].user,
                                                  "cache_control": {"type": "ephemeral"}}]})
    return {"model": "claude-opus-4-8", "max_tokens": 100, "messages": messages, "system": [
        {"type": "text", "text": f"x-anthropic-billing-header: cch={rng.random()};"}, {"type": "text", "text": system}]}


def chat(system: str, exchanges: list[Exchange], k: int, rng: random.Random) -> dict:
    def text(t: str) -> object:
        return t if rng.random() < 0.5 else [{"type": "text", "text": t}]

    messages: list[dict] = [{"role": "system", "content": text(system)}]
    for ex in exchanges[:k]:
        messages.append({"role": "user", "content": text(ex.user)})
        answer: dict = {"role": "assistant", "content": ex.answer}
        if ex.call:
            answer["tool_calls"] = [{"id": ex.call[0], "type": "function",
                                     "function": {"name": "run", "arguments": ex.call[1]}}]
        messages.append(answer)
        if ex.call:
            messages.append({"role": "tool", "tool_call_id": ex.call[0], "content": text(ex.call[2])})
    messages.append({"role": "user", "content": text(exchanges[k].user)})
    return {"model": "gpt-4.1", "messages": messages}


def responses(system: str, exchanges: list[Exchange], k: int, rng: random.Random) -> dict:
    def user(t: str) -> dict:
        item: dict = {"role": "user", "content": t if rng.random() < 0.5 else [{"type": "input_text", "text": t}]}
        return {"type": "message", **item} if rng.random() < 0.5 else item

    items: list[dict] = []
    for i, ex in enumerate(exchanges[:k]):
        items.append(user(ex.user))
        if rng.random() < 0.5:  # reasoning kept or dropped
            items.append({"type": "reasoning", "summary": [], "encrypted_content": f"gAAAA{i}"})
        message = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": ex.answer}]}
        items.append({**message, "id": f"msg_{i}", "status": "completed"} if rng.random() < 0.5 else message)
        if ex.call:
            items.append({"type": "function_call", "call_id": ex.call[0], "name": "run", "arguments": ex.call[1]})
            items.append({"type": "function_call_output", "call_id": ex.call[0], "output": ex.call[2]})
    last = exchanges[k].user
    return {"model": "gpt-5.5", "instructions": system,
            "input": last if not items and rng.random() < 0.5 else [*items, user(last)]}


def gemini(system: str, exchanges: list[Exchange], k: int, rng: random.Random) -> dict:
    contents: list[dict] = []
    for ex in exchanges[:k]:
        contents.append({"role": "user", "parts": [{"text": ex.user}]})
        parts: list[dict] = [{"text": "thinking", "thought": True}] if rng.random() < 0.5 else []
        parts.append({"text": ex.answer})
        if ex.call:
            call: dict = {"functionCall": {"id": ex.call[0], "name": "run", "args": {"a": ex.call[1]}}}
            if rng.random() < 0.5:
                call["thoughtSignature"] = str(rng.random())
            parts.append(call)
        contents.append({"role": "model", "parts": parts})
        if ex.call:
            contents.append({"role": "user", "parts": [
                {"functionResponse": {"id": ex.call[0], "name": "run", "response": {"output": ex.call[2]}}}]})
    contents.append({"role": "user", "parts": [{"text": exchanges[k].user}]})
    return {"contents": contents, "systemInstruction": {"parts": [{"text": system}]}}


BUILDERS = {"anthropic_messages": anthropic, "openai_chat": chat, "openai_responses": responses, "gemini": gemini}


@settings(max_examples=120, deadline=None)
@given(name=st.sampled_from(NAMES), system=TEXT, exchanges=CONVERSATION, seed=st.integers())
def test_each_turn_holds_the_deepest_link_of_the_turn_before(name, system, exchanges, seed):
    rng = random.Random(seed)
    build = BUILDERS[name]
    before = links(name, build(system, exchanges, 0, rng))
    assert len(before) == 2  # the root, and the first user message
    for k in range(1, len(exchanges)):
        now = links(name, build(system, exchanges, k, rng))
        assert now[0] == before[0] and before[-1] in now[1:-1]
        # (the links the two turns both read, for the messages they share, are the same; a conversation that says
        # the same two messages twice has the same link twice: one of its places is the turn before's)
        places = [i for i, link in enumerate(now) if i > 0 and link == before[-1]]
        assert any(before[-i:] == tuple(now[1:i + 1]) for i in places)
        before = now


@settings(max_examples=120, deadline=None)
@given(name=st.sampled_from(NAMES), system=TEXT, one=CONVERSATION, other=CONVERSATION, seed=st.integers())
def test_unrelated_conversations_share_no_link_past_their_root(name, system, one, other, seed):
    # Unrelated: no user message or call of one is in the other. (A link names the root and two messages, so two
    # conversations that send the same two messages in a row share that link.)
    users = {ex.user for ex in one}
    for n, ex in enumerate(other):
        if ex.user in users:
            ex.user += f"!{n}"
        if ex.call and any(mine.call and mine.call[0] == ex.call[0] for mine in one):
            ex.call = (f"{ex.call[0]}-{n}", *ex.call[1:])
    rng = random.Random(seed)
    build = BUILDERS[name]
    a = links(name, build(system, one, len(one) - 1, rng))
    b = links(name, build(system, other, len(other) - 1, rng))
    assert a[0] == b[0]  # the same system prompt and tools
    assert not set(a[1:]) & set(b[1:])


def test_only_the_last_DEPTH_messages_are_read_and_each_gives_a_link():
    exchanges = [Exchange(f"question {n}", f"answer {n}", None) for n in range(3 * DEPTH)]
    for name, build in BUILDERS.items():
        body = build("system", exchanges, len(exchanges) - 1, random.Random(0))
        evidence = protocols.registered(name).evidence.read([], body)
        assert len(evidence.links) == DEPTH + 1 and evidence.messages >= 2 * len(exchanges) - 1
        older = build("system", [Exchange("another start", "", None), *exchanges[1:]], len(exchanges) - 1,
                      random.Random(0))
        assert links(name, older) == evidence.links  # (a message before the last DEPTH + 1 is not read)


def test_a_turn_that_adds_fewer_than_DEPTH_messages_finds_the_turn_before():
    exchanges = [Exchange(f"question {n}", f"answer {n}", (f"call-{n}", "{}", "done")) for n in range(12)]
    for name, build in BUILDERS.items():
        before = links(name, build("system", exchanges, 5, random.Random(0)))
        assert before[-1] in links(name, build("system", exchanges, 6, random.Random(0)))  # (three or four more)
        assert before[-1] not in links(name, build("system", exchanges, 8, random.Random(0)))  # (nine or more)


def test_a_call_and_its_result_are_named_by_the_calls_id_and_their_contents_are_not_read():
    def asked(name: str, call: tuple[str, str, str]) -> tuple[int, ...]:
        exchanges = [Exchange("q", "a", call), Exchange("next", "b", None)]
        return links(name, BUILDERS[name]("system", exchanges, 1, random.Random(0)))

    for name in BUILDERS:
        assert asked(name, ("call-1", "{}", "short")) == asked(name, ("call-1", '{"path": "/x"}', "r" * 100_000))
        assert asked(name, ("call-1", "{}", "short")) != asked(name, ("call-2", "{}", "short"))

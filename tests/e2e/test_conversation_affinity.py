"""Conversation affinity (issue 30) through a real `mitmdump -s addons/rotator.py` and the official SDKs: a pool of
three keys from three organizations keeps each conversation on one key, so the vendor's prompt cache, which is kept
per organization, is read on every turn after the first, and state only one organization accepts is accepted.

The fake vendor caches prompts per organization as the vendors do (tests/support/vendor_accounts.py): a prefix the
same organization saw recently is a cache read, anything else a write (on Claude a write costs 1.25x the input price,
a read 0.1x); a Responses answer stored by one organization (`previous_response_id`) and the encrypted reasoning it
issued (`encrypted_content`, `store: false`, as Codex sends it) are refused by the others with the vendor's 400s, a
stored (background) response's own calls and an OpenAI conversation by the others with OpenAI's 404, and a Gemini
explicit cache one project made by the others with Google's 403.

Every test interleaves other conversations with the one it follows (a pool that rotated per request would move each
turn to the next key), and reads what the user sees: the answers, the usage's cache reads, the organization that
served each turn (the fake's record of the key), and why each flow's key was chosen (the flow's record, `-w`).
Conversations differ from their first message on (their own system prompt), and their prompts are long enough for
every model to cache them (Claude Haiku 4.5 caches from 4096 tokens on): affinity does not bind what the vendor
would not cache.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx
import openai
import pytest
from google.genai import types as gtypes
from prometheus_client.parser import text_string_to_metric_families

from protocols.evidence import DEPTH
from tests.support.clients import MODELS, PROTOCOLS, make_client
from tests.support.fake_vendor import CONVERSATION, GEMINI_CACHE, GEMINI_CACHES, RESPONSES, STORED_RESPONSE, Fault
from tests.support.flows import affinity_notes, bound_by, chosen, read_vendor_flows
from tests.support.harness import POOL_KEYS, Rotator
from tests.support.multi_turn import SYSTEM, Conversation

pytestmark = pytest.mark.e2e

FAMILY = {"chat": "openai", "responses": "openai", "anthropic": "anthropic", "gemini": "gemini"}
KEYS = {"openai": POOL_KEYS["openai"], "anthropic": [f"sk-ant-pool-{i}" for i in (1, 2, 3)],
        "gemini": [f"g-pool-{i}" for i in (1, 2, 3)]}
ORGANIZATIONS = {key: f"{family}-org-{i}" for family, keys in KEYS.items() for i, key in enumerate(keys, 1)}
THREE_KEYS = {"anthropic": {"keys": KEYS["anthropic"]}, "gemini": {"keys": KEYS["gemini"]}}
TURNS = 4
SESSION_HEADER = "x-claude-code-session-id"  # (among the default session sources)


def system(name: str) -> str:
    """A conversation's own system prompt, about 6 000 tokens (over every model's minimum cacheable prompt)."""
    return f"Conversation {name}: you are a careful coding agent. " + SYSTEM * 6


def question(name: str, turn: int) -> str:
    return f"{name}, question {turn}: what does the next module do?"


def proxy_with_flows(rotator, tmp_path: Path, **sections) -> Rotator:
    return rotator(fresh=True, args=("-w", str(tmp_path / "flows")), providers=THREE_KEYS, **sections)


def calls_of(fake_vendor, name: str) -> list:
    """The vendor's record of one conversation's requests, in order (its system prompt names it)."""
    mark = f"Conversation {name}:"
    return [c for c in fake_vendor.calls() if mark in json.dumps(c.body)]


def flows_of(proxy: Rotator, tmp_path: Path, name: str) -> list:
    """The flows of one conversation's requests, as saved (the proxy is stopped first: the file is then whole)."""
    proxy.proc.stop()
    mark = f"Conversation {name}:"
    return [f for f in read_vendor_flows(tmp_path / "flows") if mark in f.request.get_text(strict=False)]


def cache_share(convo: Conversation) -> float:
    """The share of the conversation's prompt tokens read from the cache, over its turns."""
    return sum(t.cache_read for t in convo.turns) / sum(t.input for t in convo.turns)


def reads_the_turn_before(convo: Conversation) -> bool:
    """Every turn after the first read the whole prompt of the turn before from the cache (the vendor's cache of
    the organization that served it); the first read nothing."""
    turns = convo.turns
    return turns[0].cache_read == 0 and [t.cache_read for t in turns[1:]] == [t.input for t in turns[:-1]]


def talk(protocol: str, names: list[str], turns: int = TURNS, **options) -> dict[str, Conversation]:
    """Conversations of `protocol`, one turn of each in turn, `turns` rounds."""
    convos = {name: Conversation(protocol, make_client(protocol), system=system(name), **options) for name in names}
    for turn in range(turns):
        for name, convo in convos.items():
            convo.ask(question(name, turn))
    return convos


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_conversation_stays_on_one_organization_and_reads_its_cache_on_every_turn_after_the_first(
        fake_vendor, rotator, tmp_path, record_property, protocol):
    proxy = proxy_with_flows(rotator, tmp_path)
    fake_vendor.organizations(ORGANIZATIONS)

    turns = DEPTH  # (its last turns send more messages than the lineage reads: the root and the last DEPTH)
    convos = talk(protocol, ["main", "other"], turns)

    main = convos["main"]
    calls = calls_of(fake_vendor, "main")
    assert [c.protocol for c in calls] == [protocol] * turns
    assert len({c.organization for c in calls}) == 1, [c.organization for c in calls]
    assert reads_the_turn_before(main), [(t.input, t.cache_read) for t in main.turns]
    assert reads_the_turn_before(convos["other"])
    record_property(f"{protocol} cache read share", round(cache_share(main), 3))
    if protocol == "anthropic":  # what Claude bills: input, writes at 1.25x, reads at 0.1x
        billed = sum(t.input - t.cache_read - t.cache_write + 1.25 * t.cache_write + 0.1 * t.cache_read
                     for t in main.turns)
        record_property("anthropic billed input-token equivalents", round(billed))
    flows = flows_of(proxy, tmp_path, "main")
    assert [chosen(f) for f in flows] == [["new"]] + [["bound"]] * (turns - 1)


@pytest.mark.parametrize("mode", ["chained", "stateless"])
def test_responses_state_of_one_organization_is_answered_on_every_turn(fake_vendor, rotator, tmp_path, mode):
    """`previous_response_id` of an answer stored by its organization (`store: true`, the default), and Codex's
    `store: false` with the reasoning's `encrypted_content` sent back: each turn goes to the organization that made
    the state, among other conversations of the same kind."""
    proxy = proxy_with_flows(rotator, tmp_path)
    fake_vendor.organizations(ORGANIZATIONS)

    names = ["main", "other"]  # (no retries: a refusal is the answer)
    convos = {name: Conversation("responses", make_client("responses").with_options(max_retries=0),
                                 system=system(name), **{mode: True}) for name in names}
    for turn in range(TURNS):
        for name, convo in convos.items():
            convo.ask(question(name, turn))  # (a refusal raises openai.BadRequestError)

    for name in names:
        calls = calls_of(fake_vendor, name)
        assert [c.status for c in calls] == [200] * TURNS
        assert len({c.organization for c in calls}) == 1
        assert all(t.text for t in convos[name].turns)
    if mode == "stateless":
        assert all("encrypted_content" in json.dumps(c.body["input"]) for c in calls_of(fake_vendor, "main")[1:])
    else:
        assert all(c.body.get("previous_response_id") for c in calls_of(fake_vendor, "main")[1:])
    pin = {"chained": "previous_response_id", "stateless": "encrypted_content"}[mode]
    first, *later = flows_of(proxy, tmp_path, "main")
    assert chosen(first) == ["new"]
    assert [bound_by(f) for f in later] == [[f"bound: {pin}"]] * (TURNS - 1)


def test_six_interleaved_conversations_spread_over_all_three_keys(fake_vendor, rotator, tmp_path):
    proxy = proxy_with_flows(rotator, tmp_path)
    fake_vendor.organizations(ORGANIZATIONS)
    names = [f"c{n}" for n in range(6)]

    convos = talk("chat", names, turns=3)

    served = {name: {c.organization for c in calls_of(fake_vendor, name)} for name in names}
    assert all(len(orgs) == 1 for orgs in served.values()), served
    assert Counter(org for orgs in served.values() for org in orgs) == {f"openai-org-{i}": 2 for i in (1, 2, 3)}
    assert all(reads_the_turn_before(convo) for convo in convos.values())
    with httpx.Client(proxy=proxy.url, timeout=10, trust_env=False) as http:
        page = http.get("http://rotator.status/", params={"format": "json"}).json()
        metrics = http.get("http://rotator.status/metrics").text
    [pool] = [p["pool"] for p in page["providers"] if p["name"] == "openai"]
    assert [key["conversations"] for key in pool["keys"]] == [2, 2, 2]
    shown = [s.value for f in text_string_to_metric_families(metrics) for s in f.samples
             if s.name == "rotator_key_conversations" and s.labels.get("provider") == "openai"]
    assert shown == [2, 2, 2]
    placed = [chosen(f) for name in names for f in flows_of(proxy, tmp_path, name)]
    assert placed == ([["new"]] + [["bound"]] * 2) * len(names), placed


@pytest.mark.parametrize("where", ["affinity", "provider"])
def test_affinity_off_rotates_each_turn_to_the_next_organization_as_before(fake_vendor, rotator, record_property,
                                                                           where):
    """`affinity: {mode: off}` (or `providers.NAME.affinity: off`) gives the rotation of before affinity: each turn
    of a conversation in the next organization, whose cache has not seen it since three turns ago, and Responses
    state refused after turn 1. (The conversations of the affinity tests, turn for turn: what affinity saves.)"""
    if where == "affinity":
        rotator(fresh=True, affinity={"mode": "off"}, providers=THREE_KEYS)
    else:
        rotator(fresh=True, providers={family: {"keys": keys, "affinity": "off"} for family, keys in KEYS.items()})
    fake_vendor.organizations(ORGANIZATIONS)

    for protocol in PROTOCOLS:
        start = len(fake_vendor.calls())
        convo = Conversation(protocol, make_client(protocol), system=system("main"))
        for turn in range(TURNS):
            convo.ask(question("main", turn))
        orgs = [c.organization for c in fake_vendor.calls()[start:]]
        assert len(set(orgs[:3])) == 3 and orgs[3] == orgs[0], (protocol, orgs)  # round-robin over three
        turns = convo.turns
        assert [t.cache_read for t in turns] == [0, 0, 0, turns[0].input], protocol  # (the fourth: back to the first)
        record_property(f"{protocol} cache read share", round(cache_share(convo), 3))
        if protocol == "anthropic":
            billed = sum(t.input - t.cache_read - t.cache_write + 1.25 * t.cache_write + 0.1 * t.cache_read
                         for t in turns)
            record_property("anthropic billed input-token equivalents", round(billed))

    chained = Conversation("responses", make_client("responses").with_options(max_retries=0), system=system("r"),
                           chained=True)
    chained.ask(question("r", 0))
    with pytest.raises(openai.BadRequestError) as refused:
        chained.ask(question("r", 1))
    assert refused.value.code == "previous_response_not_found"


def test_a_bound_key_that_answers_429_is_left_and_the_conversation_stays_on_the_key_that_served(
        fake_vendor, rotator, tmp_path):
    proxy = proxy_with_flows(rotator, tmp_path)
    fake_vendor.organizations(ORGANIZATIONS)
    main = Conversation("chat", make_client("chat"), system=system("main"))
    other = Conversation("chat", make_client("chat"), system=system("other"))
    main.ask(question("main", 0))
    other.ask(question("other", 0))
    [first] = calls_of(fake_vendor, "main")
    fake_vendor.always(Fault.status(429, headers={"retry-after": "60"}), key=first.credential)

    for turn in range(1, TURNS):
        main.ask(question("main", turn))
        other.ask(question("other", turn))

    calls = calls_of(fake_vendor, "main")
    keys = [(c.credential, c.status) for c in calls]
    moved_to = calls[2].credential
    assert keys == [(first.credential, 200), (first.credential, 429)] + [(moved_to, 200)] * (TURNS - 1), keys
    assert moved_to != first.credential
    turns = main.turns
    assert turns[1].cache_read == 0  # (the first turn on the new key's organization writes the prompt)
    assert [t.cache_read for t in turns[2:]] == [t.input for t in turns[1:-1]]
    flows = flows_of(proxy, tmp_path, "main")
    assert [chosen(f) for f in flows] == [["new"], ["bound", "moved"]] + [["bound"]] * (TURNS - 2)
    assert affinity_notes(flows[1])[0].endswith(": moved: key failed")  # (and is resting: the next pick leaves it)


def test_a_codex_style_conversation_whose_bound_key_answers_429_is_answered_by_the_next_key(fake_vendor, rotator,
                                                                                           tmp_path):
    """`store: false` with the reasoning's `encrypted_content` sent back (Codex): its bound key resting longer than a
    request may wait, the turn goes to another key, whose organization cannot read the other's reasoning: refused
    once (400 invalid_encrypted_content), sent again at once without those reasoning items, answered; the turns
    after stay there, the old organization's reasoning never sent to it again, its own kept."""
    proxy = proxy_with_flows(rotator, tmp_path)
    fake_vendor.organizations(ORGANIZATIONS)
    main = Conversation("responses", make_client("responses").with_options(max_retries=0), system=system("main"),
                        stateless=True)
    main.ask(question("main", 0))
    [first] = calls_of(fake_vendor, "main")
    fake_vendor.always(Fault.status(429, headers={"retry-after": "60"}), key=first.credential)

    for turn in range(1, TURNS):
        assert main.ask(question("main", turn)).text  # (a refusal raises openai.BadRequestError)

    calls = calls_of(fake_vendor, "main")
    moved_to = calls[2].credential
    assert [(c.credential, c.status) for c in calls] == [(first.credential, 200), (first.credential, 429),
                                                         (moved_to, 400)] + [(moved_to, 200)] * (TURNS - 1)
    assert moved_to != first.credential
    made_by_first = reasoning(calls[2])
    assert made_by_first and all(not reasoning(c) & made_by_first for c in calls[3:])
    assert all(reasoning(c) for c in calls[4:])  # (the reasoning the new organization made goes back to it)
    [note] = [n for f in flows_of(proxy, tmp_path, "main") for n in f.metadata["rotator"]["events"]
              if n["kind"] == "foreign"]
    assert note["items"] == len(made_by_first)


def test_reasoning_the_field_cache_kept_from_one_key_is_left_out_up_front_for_another(fake_vendor, rotator,
                                                                                       tmp_path):
    """An Anthropic client routed to a Responses target: the reasoning the first turn's key issued (its
    `encrypted_content`, which the client never sees) is put back by the field cache on the next turn, for the key
    that made it. That key answering 429, the turn goes to another key, whose organization would refuse it: sent
    without it at once, answered with no 400 at the vendor, and the flow says what was left out."""
    proxy = rotator(fresh=True, args=("-w", str(tmp_path / "flows")),
                    providers={**THREE_KEYS, "openai": {"protocol": "responses"}},
                    routes=[{"models": ["claude-via-responses"], "targets": ["openai/o4-mini"]}])
    fake_vendor.organizations(ORGANIZATIONS)
    client = make_client("anthropic").with_options(max_retries=0)
    history: list[dict] = []

    def ask(text: str) -> str:
        history.append({"role": "user", "content": text})
        message = client.messages.create(model="claude-via-responses", max_tokens=4096, system=system("main"),
                                         messages=history, thinking={"type": "enabled", "budget_tokens": 2048})
        answer = "".join(b.text for b in message.content if b.type == "text")
        history.append({"role": "assistant", "content": answer})
        return answer

    ask(question("main", 0))
    ask(question("main", 1))
    first, again = calls_of(fake_vendor, "main")
    assert again.credential == first.credential and reasoning(again)  # (put back for the key that made it)
    fake_vendor.always(Fault.status(429, headers={"retry-after": "60"}), key=first.credential)

    assert ask(question("main", 2))

    calls = calls_of(fake_vendor, "main")[2:]
    moved_to = calls[1].credential
    assert [(c.credential, c.status) for c in calls] == [(first.credential, 429), (moved_to, 200)]
    assert moved_to != first.credential and reasoning(calls[0]) and not reasoning(calls[1])
    [note] = [n for f in flows_of(proxy, tmp_path, "main") for n in f.metadata["rotator"]["events"]
              if n["kind"] == "foreign"]
    assert note["items"] == len(reasoning(calls[0]))


def reasoning(call) -> set[str]:
    """The encrypted reasoning a request carries."""
    return {i["encrypted_content"] for i in call.body.get("input", []) if i.get("type") == "reasoning"}


def test_a_compaction_is_placed_anew_and_said_so(fake_vendor, rotator, tmp_path):
    """Claude Code's compaction: the same session, its history replaced by one summary. It is no longer the
    conversation its lineage was bound by: it is placed as a new one (a free point to move it to the least loaded
    key), the flow and the log say "compaction", and the turns after it stay where it was placed."""
    proxy = proxy_with_flows(rotator, tmp_path)
    fake_vendor.organizations(ORGANIZATIONS)
    client = make_client("anthropic", default_headers={SESSION_HEADER: "0b7e3c1a-5d2f-4f6e-9a31-2c8d7e6f5a40"})
    main = Conversation("anthropic", client, system=system("main"))
    others = {name: Conversation("anthropic", make_client("anthropic"), system=system(name)) for name in ("b", "c")}
    for turn in range(TURNS):
        main.ask(question("main", turn))
        for name, convo in others.items():
            convo.ask(question(name, turn))
    before = len(calls_of(fake_vendor, "main"))

    main.history = [{"role": "user", "content": [{"type": "text", "text": "Summary of the work so far: the next "
                                                  "module reads the config and starts the pools."}]},
                    {"role": "assistant", "content": [{"type": "text", "text": "Understood: I go on from there."}]}]
    compacted = main.ask(question("main", TURNS))
    after = main.ask(question("main", TURNS + 1))

    assert compacted.text and after.text
    calls = calls_of(fake_vendor, "main")[before:]
    assert [c.status for c in calls] == [200, 200] and calls[0].organization == calls[1].organization
    assert after.cache_read == compacted.input  # bound again where the compaction was placed
    assert "conversation compacted: placed again on key" in proxy.log
    flows = flows_of(proxy, tmp_path, "main")
    assert [chosen(f) for f in flows] == [["new"]] + [["bound"]] * (TURNS - 1) + [["compaction"], ["bound"]]


def test_a_gemini_cache_made_through_the_pool_is_used_on_the_project_that_made_it(fake_vendor, rotator, tmp_path):
    """google-genai's explicit cache (`client.caches`) through a pool of three keys of three projects: made, used by
    generateContent calls interleaved with other conversations, read, given a new ttl and deleted. Each call on it
    goes to the project that made it, which alone holds it (another would answer Google's 403), and every use reads
    it; its binding is gone once it is deleted."""
    proxy = proxy_with_flows(rotator, tmp_path)
    fake_vendor.organizations(ORGANIZATIONS)
    client = make_client("gemini")
    made = gtypes.CreateCachedContentConfig(system_instruction=system("cached"), ttl="3600s")
    cache = client.caches.create(model=MODELS["gemini"], config=made)
    asked = gtypes.GenerateContentConfig(cached_content=cache.name)
    others = {name: Conversation("gemini", make_client("gemini"), system=system(name)) for name in ("b", "c")}
    answers = []
    for turn in range(TURNS):
        answers.append(client.models.generate_content(model=MODELS["gemini"], contents=question("cached", turn),
                                                      config=asked))
        for name, convo in others.items():
            convo.ask(question(name, turn))
    assert client.caches.get(name=cache.name).name == cache.name
    later = client.caches.update(name=cache.name, config=gtypes.UpdateCachedContentConfig(ttl="7200s"))
    client.caches.delete(name=cache.name)

    assert all(a.text for a in answers) and later.expire_time > cache.expire_time
    assert [a.usage_metadata.cached_content_token_count for a in answers] == [
        cache.usage_metadata.total_token_count] * TURNS
    on_cache = [r for r in fake_vendor.requests if r.protocol in (GEMINI_CACHES, GEMINI_CACHE)
                or isinstance(r.body, dict) and r.body.get("cachedContent") == cache.name]
    assert [(r.method, r.status) for r in on_cache] == [("POST", 200)] * (1 + TURNS) + [
        ("GET", 200), ("PATCH", 200), ("DELETE", 200)]
    assert len({r.organization for r in on_cache}) == 1, [r.organization for r in on_cache]
    assert [c.status for name in others for c in calls_of(fake_vendor, name)] == [200] * (2 * TURNS)
    proxy.proc.stop()
    flows = [f for f in read_vendor_flows(tmp_path / "flows")
             if "cachedContents" in f.request.path or cache.name in f.request.get_text(strict=False)]
    assert [chosen(f) for f in flows] == [[]] + [["bound"]] * (TURNS + 3)
    assert all(bound_by(f) == ["bound: cachedContent"] for f in flows[1:])


def test_a_background_response_is_polled_on_the_organization_that_holds_it(fake_vendor, rotator, tmp_path):
    """The openai SDK's background response (`background=True`, answered `queued`) through a pool of three keys of
    three organizations, polled with `responses.retrieve` between turns of other conversations until it is done,
    then deleted: every call on it goes to the organization that holds it (another would answer OpenAI's 404)."""
    proxy = proxy_with_flows(rotator, tmp_path)
    fake_vendor.organizations(ORGANIZATIONS)
    client = make_client("responses").with_options(max_retries=0)  # (a 404 is the answer)
    made = client.responses.create(model=MODELS["responses"], input=question("research", 0), background=True)
    assert made.status == "queued" and made.background
    others = {name: Conversation("responses", make_client("responses"), system=system(name)) for name in ("b", "c")}
    polls = []
    for turn in range(TURNS):
        for name, convo in others.items():
            convo.ask(question(name, turn))
        polls.append(client.responses.retrieve(made.id))
    client.responses.delete(made.id)

    assert [p.status for p in polls] == ["in_progress"] + ["completed"] * (TURNS - 1)
    assert polls[-1].output_text
    on_it = [r for r in fake_vendor.requests if r.protocol == STORED_RESPONSE]
    assert [(r.method, r.status) for r in on_it] == [("GET", 200)] * TURNS + [("DELETE", 200)]
    made_by = [r for r in fake_vendor.calls(RESPONSES) if r.body.get("background")]
    assert len({r.organization for r in made_by + on_it}) == 1, [r.organization for r in made_by + on_it]
    assert [c.status for name in others for c in calls_of(fake_vendor, name)] == [200] * (2 * TURNS)
    proxy.proc.stop()
    flows = [f for f in read_vendor_flows(tmp_path / "flows") if made.id in f.request.path]
    assert [chosen(f) for f in flows] == [["bound"]] * (TURNS + 1)
    assert all(bound_by(f) == ["bound: previous_response_id"] for f in flows)


def test_a_conversation_made_through_the_pool_is_used_on_the_organization_that_holds_it(fake_vendor, rotator,
                                                                                         tmp_path):
    """`client.conversations.create()`, then turns of `responses.create(conversation=...)` interleaved with other
    conversations, then the conversation read and deleted: each call goes to the organization that made it, which
    alone holds it (another would answer OpenAI's 404), and each turn's prompt holds the turns before."""
    proxy = proxy_with_flows(rotator, tmp_path)
    fake_vendor.organizations(ORGANIZATIONS)
    client = make_client("responses").with_options(max_retries=0)
    conversation = client.conversations.create(metadata={"topic": "demo"})
    others = {name: Conversation("responses", make_client("responses"), system=system(name)) for name in ("b", "c")}
    answers = []
    for turn in range(TURNS):
        answers.append(client.responses.create(model=MODELS["responses"], conversation=conversation.id,
                                               input=question("kept", turn)))
        for name, convo in others.items():
            convo.ask(question(name, turn))
    assert client.conversations.retrieve(conversation.id).id == conversation.id
    client.conversations.delete(conversation.id)

    assert all(a.output_text for a in answers)
    inputs = [a.usage.input_tokens for a in answers]
    assert inputs == sorted(inputs) and len(set(inputs)) == TURNS  # (the conversation's items before each input)
    named = [r for r in fake_vendor.calls(RESPONSES) if r.body.get("conversation") == conversation.id]
    on_it = [r for r in fake_vendor.requests if r.protocol == CONVERSATION]
    assert [r.status for r in named] == [200] * TURNS
    assert [(r.method, r.status) for r in on_it] == [("POST", 200), ("GET", 200), ("DELETE", 200)]
    assert len({r.organization for r in named + on_it}) == 1, [r.organization for r in named + on_it]
    proxy.proc.stop()
    flows = [f for f in read_vendor_flows(tmp_path / "flows")
             if "/conversations" in f.request.path or conversation.id in f.request.get_text(strict=False)]
    assert [chosen(f) for f in flows] == [[]] + [["bound"]] * (TURNS + 2)
    assert all(bound_by(f) == ["bound: conversation"] for f in flows[1:])

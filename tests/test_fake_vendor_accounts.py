"""The fake vendor keeps organizations apart as the vendors do (tests/support/vendor_accounts.py), driven straight
with the official SDKs: a prefix its organization saw is a cache read in the usage, another organization writes it
again; a stored Responses answer and its encrypted reasoning are refused by another organization with OpenAI's own
400s, a Gemini explicit cache by another project with Google's 403; with no organizations named, the answers are the
fake's usual ones."""

from __future__ import annotations

import openai
import pytest
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from tests.support.clients import PROTOCOLS, make_client
from tests.support.fake_vendor import INPUT_TOKENS
from tests.support.multi_turn import Conversation
from tests.support.vendor_accounts import (
    ANTHROPIC,
    Organizations,
    Refused,
    Served,
    cache_not_held,
    invalid_encrypted_content,
    previous_response_not_found,
)

A1, A2, B1 = "sk-org-a-1", "sk-org-a-2", "sk-org-b-1"
ORGS = {A1: "org-a", A2: "org-a", B1: "org-b"}


def direct(vendor, protocol: str, key: str):
    return make_client(protocol, base_url=vendor.url, api_key=key).with_options(max_retries=0) \
        if protocol != "gemini" else make_client(protocol, base_url=vendor.url, api_key=key)


def switch(convo: Conversation, vendor, key: str) -> None:
    convo.client = direct(vendor, convo.protocol, key)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_prefix_the_organization_saw_is_read_from_its_cache_and_another_organization_writes_it_again(
        fake_vendor, protocol):
    fake_vendor.organizations(ORGS)
    convo = Conversation(protocol, direct(fake_vendor, protocol, A1))
    first = convo.ask("What does the pool do?")
    assert first.cache_read == 0 and first.input > 800  # (the system prompt is long)
    switch(convo, fake_vendor, A2)  # another key of the same organization
    second = convo.ask("And the router?")
    assert second.cache_read == first.input and second.input > first.input
    switch(convo, fake_vendor, B1)
    third = convo.ask("And the engine?")
    assert third.cache_read == 0
    if protocol == "anthropic":  # (the only one that reports what it writes)
        assert (first.cache_write, second.cache_write) == (first.input, second.input - first.input)
        assert third.cache_write == third.input
    calls = fake_vendor.calls()
    assert [c.organization for c in calls] == ["org-a", "org-a", "org-b"]
    assert [c.cache[0] for c in calls] == [0, first.input, 0]


def test_anthropic_caches_nothing_without_a_marker_and_for_as_long_as_its_ttl_says():
    now = [0.0]
    orgs = Organizations(clock=lambda: now[0])
    orgs.assign({A1: "org-a"})
    body = {"system": "S" * 4000, "messages": [{"role": "user", "content": "hi"}]}
    unmarked = orgs.serve(ANTHROPIC, body, A1, 0)
    assert isinstance(unmarked, Served) and (unmarked.cache_read, unmarked.cache_write) == (0, 0)
    for ttl, later, hit in (("5m", 299, True), ("5m", 301, False), ("1h", 3599, True)):
        orgs.reset()
        orgs.assign({A1: "org-a"})
        marked = {**body, "cache_control": {"type": "ephemeral", "ttl": ttl}}
        written = orgs.serve(ANTHROPIC, marked, A1, 1)
        now[0] += later
        again = orgs.serve(ANTHROPIC, marked, A1, 2)
        assert (again.cache_read == written.cache_write > 1000) is hit


def test_a_prompt_under_the_minimum_is_not_cached():
    orgs = Organizations()
    orgs.assign({A1: "org-a"}, min_tokens=5000)
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 4000}]}
    orgs.serve("chat", body, A1, 0)
    assert orgs.serve("chat", body, A1, 1).cache_read == 0
    orgs.assign({A1: "org-a"}, min_tokens=500)
    orgs.serve("chat", body, A1, 2)
    assert orgs.serve("chat", body, A1, 3).cache_read > 500


def test_a_stored_response_is_found_by_its_organization_only(fake_vendor):
    fake_vendor.organizations(ORGS)
    convo = Conversation("responses", direct(fake_vendor, "responses", A1), chained=True)
    first = convo.ask("Hello.")
    switch(convo, fake_vendor, A2)
    second = convo.ask("Go on.")  # the same organization: found, and its prompt read from the cache
    assert second.cache_read == first.input and second.input > first.input
    switch(convo, fake_vendor, B1)
    with pytest.raises(openai.BadRequestError) as refused:
        convo.ask("And then?")
    assert refused.value.status_code == 400 and refused.value.body == previous_response_not_found(convo.last_id)["error"]
    unstored = direct(fake_vendor, "responses", A1).responses.create(model="m", input="hi", store=False)
    with pytest.raises(openai.BadRequestError, match=f"Previous response with id '{unstored.id}' not found"):
        direct(fake_vendor, "responses", A1).responses.create(model="m", input="hi", previous_response_id=unstored.id)


def test_encrypted_reasoning_is_issued_to_an_organization_and_refused_by_the_others(fake_vendor):
    fake_vendor.organizations(ORGS)
    convo = Conversation("responses", direct(fake_vendor, "responses", A1), stateless=True)
    first = convo.ask("Hello.")
    reasoning = [item for item in first.raw.output if item.type == "reasoning"]
    assert len(reasoning) == 1 and reasoning[0].encrypted_content.startswith("gAAAA")
    switch(convo, fake_vendor, A2)
    second = convo.ask("Go on.")  # its reasoning sent back to the organization that issued it
    assert second.cache_read == first.input
    switch(convo, fake_vendor, B1)
    with pytest.raises(openai.BadRequestError) as refused:
        convo.ask("And then?")
    content = next(item for item in convo.history if item.get("type") == "reasoning")["encrypted_content"]
    assert refused.value.body == invalid_encrypted_content(content)["error"]  # (the first it cannot verify)
    assert "could not be verified" in refused.value.message and fake_vendor.calls()[-1].status == 400


def test_a_gemini_cache_is_held_by_the_project_that_made_it_alone(fake_vendor):
    """Google's explicit caches through google-genai's `client.caches`: made, used, read, given a new ttl and deleted
    by its project; another project gets Google's 403 for every one of them; with no organizations named, each key
    is a project of its own."""
    fake_vendor.organizations(ORGS)
    mine, same_project, other = (direct(fake_vendor, "gemini", key) for key in (A1, A2, B1))
    brief = gtypes.CreateCachedContentConfig(system_instruction="A long brief. " * 400, ttl="600s")
    cache = mine.caches.create(model="gemini-2.5-flash", config=brief)
    assert cache.name.startswith("cachedContents/") and cache.usage_metadata.total_token_count > 1000
    asked = gtypes.GenerateContentConfig(cached_content=cache.name)
    answer = same_project.models.generate_content(model="gemini-2.5-flash", contents="Go on.", config=asked)
    assert answer.usage_metadata.cached_content_token_count == cache.usage_metadata.total_token_count
    refusals = [lambda c: c.models.generate_content(model="gemini-2.5-flash", contents="Go on.", config=asked),
                lambda c: c.caches.get(name=cache.name), lambda c: c.caches.delete(name=cache.name)]
    for refused_call in refusals:
        with pytest.raises(genai_errors.ClientError) as refused:
            refused_call(other)
        assert (refused.value.code, refused.value.status) == (403, "PERMISSION_DENIED")
        assert refused.value.message == cache_not_held()["error"]["message"]
    later = mine.caches.update(name=cache.name, config=gtypes.UpdateCachedContentConfig(ttl="7200s"))
    assert later.expire_time > cache.expire_time
    mine.caches.delete(name=cache.name)
    with pytest.raises(genai_errors.ClientError, match="CachedContent not found"):
        mine.caches.get(name=cache.name)
    fake_vendor.reset()
    alone = mine.caches.create(model="gemini-2.5-flash", config=brief)
    with pytest.raises(genai_errors.ClientError, match="CachedContent not found"):
        same_project.caches.get(name=alone.name)


def test_refusals_name_the_state_and_never_leak_another_organizations_cache():
    orgs = Organizations()
    orgs.assign({A1: "org-a", B1: "org-b"})
    forged = {"model": "m", "input": [{"type": "reasoning", "summary": [], "encrypted_content": "gAAAAforged"}]}
    assert orgs.serve("responses", forged, A1, 0) == Refused(400, invalid_encrypted_content("gAAAAforged"), "org-a")
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 4000}]}
    orgs.serve("chat", body, A1, 1)
    assert orgs.serve("chat", body, B1, 2).cache_read == 0 and orgs.serve("chat", body, "sk-other", 3).cache_read == 0
    assert orgs.serve("chat", body, A1, 4).cache_read > 900


def test_with_no_organizations_named_the_usage_is_the_fakes_usual_one(fake_vendor):
    for _ in range(2):
        completion = direct(fake_vendor, "chat", A1).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x" * 4000}])
        assert completion.usage.prompt_tokens == INPUT_TOKENS
        assert completion.usage.prompt_tokens_details.cached_tokens == 0
    assert fake_vendor.calls()[-1].organization is None

"""Typed outcomes (rewrite/policy/outcomes.py): every kind of note a flow can carry is shown by the flow's view, the
flow list and the status page; their values stay the strings saved flows and the status JSON hold; and a failure's
kind, not the words of its reason, says whether the client gets a 504 or a 502."""

from __future__ import annotations

import json

import httpx
import pytest

from rewrite.accounting.metrics import Tally
from rewrite.inspection import flow_list, views
from rewrite.inspection.status import page, render_json, render_text
from rewrite.policy.outcomes import ATTEMPT_ERRORS, FailureKind, Note
from rewrite.pool import KeyPool
from rewrite.pool.report import describe
from tests.support.engine_harness import Upstream, run, stall_before_headers

pytestmark = pytest.mark.virtual_time  # (tests/support/virtual_time.py)

KEY = "sk-pool-secret-bbbb2222"
MASKED = "…2222"


def test_note_kinds_keep_the_strings_saved_flows_and_the_status_json_hold():
    assert sorted(Note) == sorted(["retry", "failed", "fallback", "repaired", "cut", "committed", "stream-refused",
                                   "usage-refused", "param-refused", "resumed", "downgraded", "signed", "window",
                                   "affinity", "foreign", "hedged"])
    assert json.dumps({"kind": Note.STREAM_REFUSED}) == '{"kind": "stream-refused"}'


def noted(kind: Note) -> dict:
    """`flow.metadata["rotator"]` of a flow with one note of `kind`, every field of it naming the kind."""
    said = f"said {kind}"
    return {"provider": "openai", "key": MASKED,
            "events": [{"kind": kind.value, "detail": said, "reason": said, "cause": said, "provider": said,
                        "key": MASKED}]}


@pytest.mark.parametrize("kind", list(Note))
def test_every_note_kind_is_shown_in_the_flow_view_and_the_flow_list(kind):
    rot = noted(kind)
    facts = views.Facts("openai_chat", "/v1/chat/completions", b'{"model": "m", "messages": []}', 200,
                        "application/json", b'{"choices": []}', rot)
    header = views.render_response(facts)
    comment, _ = flow_list.summary(rot["events"])
    if kind in flow_list.UNSHOWN:
        assert f"said {kind}" not in header and comment == ""
    else:
        assert f"said {kind}" in header and f"said {kind}" in comment


@pytest.mark.parametrize("kind", list(Note))
def test_every_note_kind_that_says_a_key_failed_is_listed_under_that_key_on_the_status_page(kind):
    tally = Tally(lambda: 1_700_000_000)
    tally.record(noted(kind))
    pool = KeyPool([KEY], name="openai", clock=lambda: 50, wall=lambda: 1_700_000_000)
    data = page([{"name": "openai", "family": "openai", "pool": describe(pool, 50, 1_700_000_000)}], [], tally,
                1_700_000_000)
    [shown] = json.loads(render_json(data))["providers"][0]["pool"]["keys"]
    if kind in ATTEMPT_ERRORS:
        assert [(e["kind"], e["reason"]) for e in shown["errors"]] == [(kind, f"said {kind}")]
        assert f"{kind}: said {kind}" in render_text(data).decode()
    else:
        assert shown["errors"] == [] and shown["error_count"] == 0


def test_only_deadlines_are_timeouts():
    assert {k for k in FailureKind if k.timeout} == {FailureKind.FIRST_TOKEN_TIMEOUT, FailureKind.REQUEST_TIMEOUT,
                                                      FailureKind.HANDSHAKE_TIMEOUT}


async def test_a_connection_error_whose_message_says_timeout_is_a_502_and_a_deadline_a_504():
    def refused(request):
        raise httpx.ConnectError("timeout while the proxy dialled the vendor")

    out, job = await run("openai_chat", Upstream([refused]), keys=(), first_token_retries=0)
    assert out.status == 502 and "timeout while the proxy dialled" in json.loads(out.body)["error"]["message"]
    out, job = await run("openai_chat", Upstream([stall_before_headers(10)]), keys=(), first_token_timeout=0.1,
                         first_token_retries=0)
    assert out.status == 504

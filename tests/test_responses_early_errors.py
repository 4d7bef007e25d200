"""A Responses stream that fails inside its 200 before any content (`response.failed` or `error` among its first
events, as the Codex backend does): the engine reads it as the error answer it stands for. A transient one is the
attempt's failure, asked again (the client never sees it); one that is the request's own fault reaches the client as
it came; when every attempt failed so, the client gets the last stream as the vendor sent it."""

from __future__ import annotations

import json

import pytest

from tests.support import samples
from tests.support.engine_harness import Upstream, events_of, run, sse
from tests.support.engine_streams import kinds

pytestmark = pytest.mark.usefixtures("each_transport")

CREATED = events_of(samples.RESPONSES_TEXT)[:2]  # response.created, response.in_progress


def failed(code: str) -> bytes:
    response = {"id": "resp_1", "object": "response", "status": "failed", "output": [], "usage": None,
                "error": {"code": code, "message": f"failed: {code}"}}
    return f"event: response.failed\ndata: {json.dumps({'type': 'response.failed', 'response': response})}\n\n".encode()


async def test_a_transient_failure_among_the_first_events_is_asked_again():
    up = Upstream([lambda r: sse([*CREATED, failed("server_error")]),
                   lambda r: sse(events_of(samples.RESPONSES_TEXT))])
    out, job = await run("openai_responses", up)
    assert up.keys() == ["k1", "k2"]
    assert out.status == 200 and out.body == samples.RESPONSES_TEXT  # one clean answer
    assert kinds(job) == ["retry"] and "an error inside the 200 stream, as status 500" in job.notes[0]["reason"]


async def test_the_requests_own_failure_reaches_the_client_as_it_came():
    """context_length_exceeded: the same on every key (Codex compacts its history on it)."""
    stream = [*CREATED, failed("context_length_exceeded")]
    up = Upstream([lambda r: sse(stream), lambda r: sse(events_of(samples.RESPONSES_TEXT))])
    out, job = await run("openai_responses", up)
    assert up.keys() == ["k1"]
    assert out.status == 200 and out.body == b"".join(stream)
    assert kinds(job) == []


async def test_when_every_attempt_failed_so_the_client_gets_the_vendors_stream():
    stream = [*CREATED, failed("server_error")]
    up = Upstream([lambda r: sse(stream)])
    out, job = await run("openai_responses", up, keys=("k1", "k2"), first_token_retries=1)
    assert up.keys() == ["k1", "k2"]
    assert out.status == 200 and out.body == b"".join(stream)
    assert kinds(job)[-1] == "failed"


async def test_a_failure_after_the_first_token_is_forwarded():
    head = events_of(samples.RESPONSES_TEXT)[:6]
    up = Upstream([lambda r: sse([*head, failed("server_error")]), lambda r: sse(events_of(samples.RESPONSES_TEXT))])
    out, job = await run("openai_responses", up)
    assert up.keys() == ["k1"] and out.body == b"".join([*head, failed("server_error")])


async def test_a_non_stream_clients_folded_answer_is_asked_again_too():
    up = Upstream([lambda r: sse([*CREATED, failed("server_error")]),
                   lambda r: sse(events_of(samples.RESPONSES_TEXT))])
    out, job = await run("openai_responses", up, stream=False)
    assert up.keys() == ["k1", "k2"]
    assert out.status == 200 and json.loads(out.body)["status"] == "completed"

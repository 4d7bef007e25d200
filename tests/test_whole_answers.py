"""addons/whole_answers.py: a whole answer becomes the flow's response and leaves nothing behind for the collector."""

from __future__ import annotations

import asyncio
import gc
import weakref

from mitmproxy.test import tflow

from addons.whole_answers import answer_in_flow


class Held:
    """Stands in for what a request's frames hold (its body, its parse): freed or not."""


class Engine:
    async def serve(self, job, request, answer) -> None:
        answer.start(200, [("content-type", "application/json")])
        answer.write(b'{"ok": true}')
        answer.finish()


async def answered(flow) -> weakref.ref:
    held = Held()  # (a local of a caller of answer_in_flow, as the request's are)
    await answer_in_flow(Engine(), flow, object(), object())
    return weakref.ref(held)


async def test_the_answer_is_the_flows_response_without_trailers():
    flow = tflow.tflow()
    await answer_in_flow(Engine(), flow, object(), object())
    assert flow.response.status_code == 200
    assert flow.response.content == b'{"ok": true}'
    assert flow.response.headers["content-length"] == "12"
    assert flow.response.trailers is None
    assert flow.response.timestamp_end is not None


async def test_the_request_it_answered_is_freed_when_it_ends_not_at_the_next_collection():
    flow = tflow.tflow()
    await asyncio.sleep(0)
    gc.collect()
    gc.disable()
    try:
        held = await answered(flow)
        assert held() is None  # (a reference cycle through the callers' frames would keep it until a collection)
    finally:
        gc.enable()

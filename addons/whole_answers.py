"""A call whose client asked for its answer whole (not a stream), answered in its flow: Interception asks the engine,
and when it is such a call the engine's answer becomes `flow.response` (rewrite/intake/whole.py). mitmproxy then
connects to no server for the flow (no loopback connection, no second HTTP/1.1 exchange over the in-memory pipe).
"""

from __future__ import annotations

import asyncio
import time

from mitmproxy import http

from rewrite.surface import Engine, Job, LoopbackRequest, WholeAnswer

CLIENT_CHECK = 0.25  # seconds between two looks at whether the client is still there


async def answer_in_flow(engine: Engine, flow: http.HTTPFlow, job: Job, request: LoopbackRequest) -> None:
    """The engine's answer to `request`, as the flow's response. mitmproxy holds the flow's events while its
    `request` hook runs, so the client's connection is looked at meanwhile: a client that leaves stops the engine
    (as its hang-up of a loopback connection does; the upstream request is closed) and its flow is killed."""
    answer = WholeAnswer()
    serving = asyncio.ensure_future(engine.serve(job, request, answer))
    client, loop = flow.client_conn, asyncio.get_running_loop()
    # (a timer and a future, not a wait with a timeout each turn: that costs a set, a timer and type checks)
    ended: asyncio.Future[None] = loop.create_future()

    def end(_: object = None) -> None:
        if not ended.done():
            ended.set_result(None)

    def look() -> None:
        if client.connected:
            timer[0] = loop.call_later(CLIENT_CHECK, look)
        else:
            end()

    timer = [loop.call_later(CLIENT_CHECK, look)]  # (the one pending)
    serving.add_done_callback(end)
    try:
        await ended
    finally:
        timer[0].cancel()
        if not serving.done():
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
    if serving.cancelled():
        flow.kill()
        return
    answer.end(serving.exception())  # (a failure's 502, as the loopback server answers it)
    # Made with trailers, then without: mitmproxy's type check of a field given None first fails its other type,
    # and the error it catches holds this frame and its callers' (the request, its body and parse) in a reference
    # cycle until the garbage collector's next run, which then costs a collection every other request.
    now = time.time()
    flow.response = http.Response(b"HTTP/1.1", answer.status or 502, b"", http.Headers(answer.fields()),
                                  answer.body(), http.Headers(), now, now)
    flow.response.data.trailers = None

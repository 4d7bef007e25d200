"""The loopback server's bookkeeping: what a flow keeps of the body sent, and when it lets go of it."""

import asyncio
import gc
import weakref

import httpx

from rewrite.loopback import FLOW_BODY_HEAD, FLOW_BODY_TAIL, FlowBody, LoopbackServer


def fed(body: FlowBody, data: bytes, step: int) -> FlowBody:
    for i in range(0, len(data), step):
        body.add(data[i : i + step])
    return body


def test_a_body_up_to_head_plus_tail_is_shown_whole():
    data = bytes(range(256)) * 5  # 1280 bytes
    for step in (1, 7, 100, 1280):
        body = fed(FlowBody(head=1000, tail=280), data, step)
        assert body.shown() == data and body.left_out == 0


def test_a_longer_body_shows_its_head_and_tail_and_says_how_much_is_left_out():
    data = b"".join(b"data: %06d\n\n" % i for i in range(10_000))  # 140 000 bytes
    for step in (14, 1000, 4096):
        body = fed(FlowBody(head=1000, tail=500), data, step)
        shown = body.shown()
        assert shown.startswith(data[:1000]) and shown.endswith(data[-500:])
        assert body.left_out == len(data) - 1500
        assert b"[rotator: 138500 bytes left out here]" in shown
        assert len(shown) < 1600
        assert body.note() == "body shown: the first 1000 and the last 500 of 140000 bytes sent to the client (138500 left out)"


def test_memory_stays_bounded_however_long_the_stream():
    body = FlowBody(head=1000, tail=500)
    for _ in range(100_000):
        body.add(b"x" * 214)
        assert len(body.head) + len(body.tail) <= 1000 + 2 * 500
    assert body.size == 21_400_000


def test_the_default_bounds_are_a_few_mib():
    assert 1 << 20 <= FLOW_BODY_HEAD <= 16 << 20 and 4 << 10 <= FLOW_BODY_TAIL <= FLOW_BODY_HEAD
    assert FlowBody()._head_max == FLOW_BODY_HEAD


async def test_the_loopback_server_keeps_nothing_of_a_response_once_it_is_sent():
    kept: list[weakref.ref] = []

    async def handler(request, responder):
        kept.append(weakref.ref(responder))
        responder.start(200, [("content-type", "text/plain")])
        responder.write(b"x" * 100_000)

    server = LoopbackServer(handler)
    port = server.acquire_port("client")
    await asyncio.sleep(0)  # the listening task starts
    async with httpx.AsyncClient() as client:  # one keep-alive connection, left open while we look
        resp = await client.get(f"http://127.0.0.1:{port}/")
        assert len(resp.content) == 100_000
        await asyncio.sleep(0.05)
        gc.collect()
        assert kept[0]() is None, gc.get_referrers(kept[0]())
    server.close()

"""The in-memory connection behaves like loopback TCP to asyncio's streams: bytes both ways in order, EOF,
close, and back-pressure; and the loopback server answers over it exactly as over TCP."""

import asyncio

from rewrite.intake.loopback import ConnectionReader, LoopbackServer
from rewrite.intake.memory_pipe import open_pipe
from rewrite.internals import HELD_FROM


async def test_bytes_flow_both_ways_in_order_and_the_addresses_are_reported():
    (ra, wa), (rb, wb) = open_pipe(("127.0.0.1", 1), ("127.0.0.1", 2))
    for i in range(100):
        wa.write(b"%d," % i)
    wb.write(b"back")
    assert await rb.readexactly(len(b"".join(b"%d," % i for i in range(100)))) == b"".join(
        b"%d," % i for i in range(100))
    assert await ra.readexactly(4) == b"back"
    assert wa.get_extra_info("sockname") == ("127.0.0.1", 1) and wa.get_extra_info("peername") == ("127.0.0.1", 2)
    assert wb.get_extra_info("peername") == ("127.0.0.1", 1) and wa.get_extra_info("socket") is None


async def test_write_eof_is_a_half_close():
    (ra, wa), (rb, wb) = open_pipe(("127.0.0.1", 1), ("127.0.0.1", 2))
    wa.write(b"last")
    wa.write_eof()
    assert await rb.read() == b"last"  # read to the end
    wb.write(b"still open the other way")
    assert await ra.readexactly(24) == b"still open the other way"


async def test_close_is_an_end_of_stream_for_the_other_side_and_later_writes_are_lost():
    (ra, wa), (rb, wb) = open_pipe(("127.0.0.1", 1), ("127.0.0.1", 2))
    wa.write(b"bye")
    wa.close()
    await wa.wait_closed()
    assert await rb.read() == b"bye"
    assert await rb.read() == b""
    wb.write(b"into the void")  # as on TCP after the peer closed: no exception here
    wb.close()
    await wb.wait_closed()
    assert await ra.read() == b""


async def test_a_full_reader_makes_the_writer_wait_until_it_is_read():
    (ra, wa), (rb, wb) = open_pipe(("127.0.0.1", 1), ("127.0.0.1", 2), peer_limit=1000)
    wa.write(b"x" * 5000)  # past twice the reader's limit: its end pauses, so our writer must wait
    assert wa.transport.get_write_buffer_size() > 0
    drained = asyncio.ensure_future(wa.drain())
    for _ in range(5):  # (in memory: a few turns of the loop, no time, would let a wrong drain end)
        await asyncio.sleep(0)
    assert not drained.done()
    assert len(await rb.read(5000)) == 5000  # the reader catches up: the writer may go on
    await asyncio.wait_for(drained, 1)
    assert wa.transport.get_write_buffer_size() == 0


async def test_a_writer_waiting_on_a_full_reader_is_released_when_the_reader_closes():
    (ra, wa), (rb, wb) = open_pipe(("127.0.0.1", 1), ("127.0.0.1", 2), peer_limit=10)
    wa.write(b"x" * 100)
    drained = asyncio.ensure_future(wa.drain())
    await asyncio.sleep(0)
    wb.close()
    await asyncio.wait_for(asyncio.gather(drained, return_exceptions=True), 1)


async def test_the_loopback_server_answers_in_memory_as_over_tcp():
    async def handler(request, responder):
        responder.start(200, [("content-type", "text/event-stream")])
        for i in range(3):
            responder.write(b"data: %d %b\n\n" % (i, request.body))
            await responder.drain()

    server = LoopbackServer(handler)
    port = server.acquire_port("client")
    request = b"POST /v1/x HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\nhi"
    answers = []
    for connect in (lambda: asyncio.open_connection("127.0.0.1", port), lambda: _now(server.connect_in_memory(port))):
        reader, writer = await connect()
        for _ in range(2):  # keep-alive: a second request on the same connection
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            body = await reader.readuntil(b"0\r\n\r\n")
            answers.append((head.split(b"\r\n")[0], body))
        writer.close()
    assert len(answers) == 4 and len(set(answers)) == 1
    assert answers[0][0] == b"HTTP/1.1 200 " and b"data: 2 hi\n\n" in answers[0][1]
    server.close()


async def test_the_loopback_server_cancels_the_handler_when_the_in_memory_client_hangs_up():
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def handler(request, responder):
        started.set()
        try:
            await asyncio.get_running_loop().create_future()  # (a handler that never ends by itself)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = LoopbackServer(handler)
    port = server.acquire_port("client")
    reader, writer = server.connect_in_memory(port)
    writer.write(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
    await asyncio.wait_for(started.wait(), 1)
    writer.close()
    await asyncio.wait_for(cancelled.wait(), 1)
    server.close()


async def _now(value):
    return value


async def test_a_large_write_reaches_a_reader_that_asks_for_all_of_it_as_the_object_written():
    """A large request body goes to the engine by reference, not copied into the reader's buffer and out again;
    read in parts, or after more bytes came, it is the same bytes in the same order."""
    (ra, wa), (rb, wb) = open_pipe(("127.0.0.1", 1), ("127.0.0.1", 2))
    body = bytes(range(256)) * (HELD_FROM // 256)
    wa.write(b"head")
    wa.write(body)
    assert await rb.read(100) == b"head"
    assert await rb.read(len(body)) is body
    wa.write(body)
    assert await rb.readexactly(10) == body[:10] and await rb.read(len(body)) == body[10:]
    wa.write(body)
    wa.write(b"tail")
    wa.write_eof()
    assert await rb.read() == body + b"tail" and rb.at_eof()


async def test_a_read_waiting_when_a_large_write_arrives_gets_its_bytes_not_an_end_of_stream():
    """mitmproxy's reading task waits in `read(65535)` for the engine's answer; a write of HELD_FROM bytes or more
    (a decoded MiB of a pass-through body) that wakes it is what it reads, never an empty read (its end of stream:
    it would close the connection with the rest of the response unread)."""
    (ra, wa), (rb, wb) = open_pipe(("127.0.0.1", 1), ("127.0.0.1", 2))
    body = bytes(range(256)) * (2 * HELD_FROM // 256)
    part = asyncio.ensure_future(rb.read(65535))
    await asyncio.sleep(0)  # (waiting now)
    wa.write(body)
    assert await part == body[:65535] and not rb.at_eof()
    assert await rb.read(len(body)) == body[65535:]
    whole = asyncio.ensure_future(rb.read(len(body)))
    await asyncio.sleep(0)
    wa.write(body)
    assert await whole is body  # (woken by it, still taken as the object written)
    wa.write(b"0\r\n\r\n")
    assert await rb.read(65535) == b"0\r\n\r\n"


async def test_a_large_body_written_in_pieces_reaches_the_body_reader_as_the_pieces_written():
    """A large body that mitmproxy streams to the engine as it arrives is read as the objects it wrote, not copied
    into the reader's buffer and out again: the same bytes in the same order, a small write among them in its
    place."""
    (ra, wa), (rb, wb) = open_pipe(("127.0.0.1", 1), ("127.0.0.1", 2))
    conn = ConnectionReader(rb, 1 << 30)
    written = [bytes([i]) * (64 << 10) for i in range(6)]
    written.insert(3, b"small")
    wa.write(b"POST /v1/messages HTTP/1.1\r\n")
    assert await rb.readuntil(b"\r\n") == b"POST /v1/messages HTTP/1.1\r\n"
    for piece in written:
        wa.write(piece)
    got = await conn.pieces(sum(map(len, written)))
    assert b"".join(got) == b"".join(written)
    assert [id(p) for p in got] == [id(p) for p in written]
    wa.write(written[0] + b"next")  # (more than the body asks: read as before, the rest left for the next)
    assert b"".join(await conn.pieces(len(written[0]))) == written[0]
    assert await rb.read(4) == b"next"

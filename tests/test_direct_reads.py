"""Bytes the engine writes to mitmproxy in memory go straight to mitmproxy's connection handler while its reading
task is idle (rewrite/internals.py `direct_reads`), and wait for that task whenever its way could differ."""

import asyncio
from types import SimpleNamespace

from mitmproxy.connection import Server

from rewrite.intake.loopback import LAST_CHUNK
from rewrite.intake.memory_pipe import open_pipe
from rewrite.internals import direct_reads


class Handler:
    """The parts of mitmproxy's ConnectionHandler a sink uses."""

    def __init__(self) -> None:
        self._server_event_lock = asyncio.Lock()
        self.transports: dict = {}
        self.received: list[bytes] = []

    async def server_event(self, event) -> None:
        async with self._server_event_lock:
            self.received.append(event.data)


def writer_with(buffered: int):
    return SimpleNamespace(transport=SimpleNamespace(get_write_buffer_size=lambda: buffered))


async def setup(*, buffered: int = 0):
    (reader, own_writer), (_, writer) = open_pipe(("127.0.0.1", 1), ("127.0.0.1", 2))
    writer.kept = own_writer  # (a StreamWriter closes its connection when it is collected)
    handler, connection = Handler(), Server(address=("127.0.0.1", 2))
    handler.transports[connection] = SimpleNamespace(writer=writer_with(buffered))
    reader.sink = direct_reads(handler, connection, LAST_CHUNK)
    reading = asyncio.ensure_future(reader.read(65536))  # mitmproxy's reading task, idle until bytes arrive
    await asyncio.sleep(0)
    return handler, connection, writer, reading


async def test_bytes_reach_the_handler_at_once_without_waking_the_reading_task():
    handler, _, writer, reading = await setup()
    writer.write(b"data: one\n\n")
    writer.write(b"data: two\n\n")
    assert handler.received == [b"data: one\n\n", b"data: two\n\n"]  # in the writer's own call, in order
    await asyncio.sleep(0)
    assert not reading.done()
    reading.cancel()


async def test_a_response_head_waits_for_the_reading_task_and_the_bytes_after_it_go_at_once():
    """mitmproxy builds the flow's Response from the head, and its type checks leave TypeErrors whose tracebacks
    keep the frames they were raised under: on the reading task's stack, not on the writer's (the engine's request)."""
    handler, _, writer, reading = await setup()
    head = b"HTTP/1.1 200 \r\ntransfer-encoding: chunked\r\n\r\n"
    writer.write(head)
    assert handler.received == []
    assert await reading == head
    reading = asyncio.ensure_future(writer.transport.peer._reader.read(65536))
    await asyncio.sleep(0)
    writer.write(b"5\r\nhello\r\n")
    assert handler.received == [b"5\r\nhello\r\n"]
    reading.cancel()


async def test_while_the_handler_is_busy_bytes_wait_for_the_reading_task_in_order():
    handler, _, writer, reading = await setup()
    async with handler._server_event_lock:
        writer.write(b"first ")
    writer.write(b"second")  # (bytes already wait: these wait behind them, not past them)
    assert handler.received == []
    assert await reading == b"first second"


async def test_a_writer_with_bytes_waiting_keeps_back_pressure_with_the_reading_task():
    handler, _, writer, reading = await setup(buffered=1)
    writer.write(b"x")
    assert handler.received == [] and await reading == b"x"


async def test_an_asyncio_stream_writer_with_bytes_waiting_keeps_back_pressure_too():
    """(mitmproxy's writers are asyncio's StreamWriters: the sink reads their transport without the property.)"""
    handler, connection, writer, reading = await setup()
    buffered = SimpleNamespace(get_write_buffer_size=lambda: 1, is_closing=lambda: True)
    stream_writer = asyncio.StreamWriter(buffered, None, None, asyncio.get_running_loop())
    handler.transports[connection] = SimpleNamespace(writer=stream_writer)
    writer.write(b"x")
    assert handler.received == [] and await reading == b"x"


async def test_a_connection_the_handler_no_longer_has_is_read_by_its_task():
    handler, connection, writer, reading = await setup()
    del handler.transports[connection]
    writer.write(b"x")
    assert handler.received == [] and await reading == b"x"


async def test_a_lock_just_released_to_a_waiter_is_left_to_that_waiter():
    handler, _, writer, reading = await setup()
    lock = handler._server_event_lock
    await lock.acquire()
    waiter = asyncio.ensure_future(lock.acquire())
    await asyncio.sleep(0)
    lock.release()  # unlocked, but its waiter goes first
    writer.write(b"x")
    assert handler.received == [] and await reading == b"x"
    await waiter
    lock.release()


def test_a_handler_of_another_shape_gets_no_sink():
    assert direct_reads(SimpleNamespace(transports={}), Server(address=("h", 1)), LAST_CHUNK) is None
    assert direct_reads(Handler(), None, LAST_CHUNK) is None


async def test_a_connection_opened_by_a_handler_gets_a_sink_to_it():
    """mitmproxy opens a server connection from `ConnectionHandler.open_connection(self, command)`, its own task:
    the hand-off finds that handler and connection there."""
    import inspect

    from mitmproxy.proxy import server as proxy_server
    from mitmproxy.test import taddons

    from addons.handoff import Handoff
    from rewrite.intake.loopback import LoopbackServer

    # what this relies on in the mitmproxy installed
    assert list(inspect.signature(proxy_server.ConnectionHandler.open_connection).parameters) == ["self", "command"]
    assert "self._server_event_lock = asyncio.Lock()" in inspect.getsource(proxy_server.ConnectionHandler.__init__)

    async def answer(request, responder):
        responder.start(200, [])

    server = LoopbackServer(answer)
    handoff = Handoff(SimpleNamespace(server=server))

    class MitmproxyLikeHandler(Handler):
        async def open_connection(self, command):
            return await proxy_server.asyncio.open_connection("127.0.0.1", port, local_addr=None)

    with taddons.context(handoff) as tctx:
        tctx.configure(handoff, rotator_in_memory=True)
        port = server.acquire_port("client")
        await asyncio.sleep(0)
        handler, connection = MitmproxyLikeHandler(), Server(address=("127.0.0.1", port))
        reader, writer = await asyncio.ensure_future(handler.open_connection(SimpleNamespace(connection=connection)))
        handler.transports[connection] = SimpleNamespace(writer=writer)
        assert reader.sink is not None
        reading = asyncio.ensure_future(reader.read(65536))
        await asyncio.sleep(0)
        reader.feed_data(b"x")
        assert handler.received == [b"x"]
        reading.cancel()
        writer.close()
        tctx.configure(handoff, rotator_in_memory=False)


async def test_the_end_of_a_response_waits_for_the_reading_task():
    """mitmproxy runs its response hooks on it, and they read what the engine records just after writing it."""
    handler, _, writer, reading = await setup()
    writer.write(b"5\r\nhello\r\n0\r\n\r\n")
    assert handler.received == [] and await reading == b"5\r\nhello\r\n0\r\n\r\n"

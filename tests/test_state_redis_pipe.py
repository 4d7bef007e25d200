"""The per-request Redis calls' own pipelined connection (rewrite/state/redis/pipe.py), against a real redis-server:
each caller gets its own reply however many are under way, a script the server forgot is loaded again, the URL's
password and database are used, and a frozen, restarted or vanished server raises instead of mixing replies."""

from __future__ import annotations

import asyncio
import gc

import hiredis
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from rewrite.state.redis.pipe import Pipe, Prepared
from tests.support.harness import free_port
from tests.support.redis_server import RedisServer
from tests.support.timing import MARGIN


async def test_concurrent_calls_each_get_their_own_reply(redis_server):
    redis_server.flush()
    pipe = Pipe(redis_server.url, 0.5)
    replies = await asyncio.gather(*(pipe.call("ECHO", f"call {i}") for i in range(500)))
    assert replies == [f"call {i}".encode() for i in range(500)]
    pipe.drop()


async def test_replies_larger_than_one_read_arrive_whole(redis_server):
    redis_server.flush()
    pipe = Pipe(redis_server.url, 2)
    values = [bytes([65 + i]) * (100_000 + i) for i in range(3)]  # (each past the pipe's 64 KiB buffer)
    await asyncio.gather(*(pipe.call("SET", f"big{i}", v) for i, v in enumerate(values)))
    assert await asyncio.gather(*(pipe.call("GET", f"big{i}") for i in range(3))) == values
    pipe.drop()


async def test_an_error_reply_raises_for_its_caller_only(redis_server):
    redis_server.flush()
    pipe = Pipe(redis_server.url, 0.5)
    await pipe.call("SET", "a-string", "x")
    results = await asyncio.gather(pipe.call("ECHO", "before"), pipe.call("HGET", "a-string", "f"),
                                   pipe.call("ECHO", "after"), return_exceptions=True)
    assert results[0] == b"before" and results[2] == b"after"
    assert isinstance(results[1], ResponseError) and "WRONGTYPE" in str(results[1])
    pipe.drop()


async def test_a_script_the_server_forgot_is_sent_again(redis_server):
    redis_server.flush()
    pipe = Pipe(redis_server.url, 0.5)
    script = "return ARGV[1] .. KEYS[1]"
    assert await pipe.script(script, ["k"], ["v"]) == b"vk"
    await pipe.call("SCRIPT", "FLUSH")  # (as a restarted Redis would have)
    assert await pipe.script(script, ["k2"], ["v2"]) == b"v2k2"
    assert await pipe.call("SCRIPT", "EXISTS", "adc83b19e793491b1c6ea0fd8b46cd9f32e592fc") == [0]
    pipe.drop()


async def test_a_reply_late_from_a_frozen_server_is_never_taken_for_the_next_calls(redis_server):
    redis_server.flush()
    pipe = Pipe(redis_server.url, 0.5)
    await pipe.call("SET", "k", "first")
    with redis_server.frozen():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(pipe.call("GET", "k"), 0.2)  # (a caller that gives up before the pipe does)
    await pipe.call("SET", "k", "second")
    assert await pipe.call("GET", "k") == b"second"
    pipe.drop()


async def test_a_call_without_a_reply_in_time_raises_by_itself_and_drops_the_connection(redis_server):
    redis_server.flush()
    pipe = Pipe(redis_server.url, 0.2)
    await pipe.call("SET", "k", "first")
    loop = asyncio.get_running_loop()
    with redis_server.frozen():
        began = loop.time()
        calls = [asyncio.ensure_future(pipe.call("GET", "k")), asyncio.ensure_future(pipe.call("ECHO", "x"))]
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 0.2 + MARGIN)
        assert all(isinstance(r, TimeoutError) for r in results), results  # (the pipe's own timeout, no caller's)
        assert loop.time() - began >= 0.2 * 0.9
    await pipe.call("SET", "k", "second")  # (on a new connection: the frozen one's late replies are never read)
    assert await pipe.call("GET", "k") == b"second"
    pipe.drop()


async def test_a_caller_that_gives_up_leaves_the_order_intact(redis_server):
    redis_server.flush()
    pipe = Pipe(redis_server.url, 0.5)
    slow = asyncio.ensure_future(pipe.call("ECHO", "abandoned"))
    await asyncio.sleep(0)
    slow.cancel()
    assert await pipe.call("ECHO", "mine") == b"mine"
    pipe.drop()


async def test_calls_under_way_when_the_server_goes_away_raise_and_the_next_connects_again():
    server = RedisServer().start()
    pipe = Pipe(server.url, 0.5)
    try:
        assert await pipe.call("PING") == b"PONG"
        with server.frozen():
            waiting = asyncio.ensure_future(pipe.call("PING"))
            await asyncio.sleep(0)  # (written: the pipe is connected)
            server.process.kill()
            with pytest.raises(RedisConnectionError):
                await asyncio.wait_for(waiting, 2)
        server.process.wait()
        with pytest.raises(OSError):  # (nothing listens: refused, not hung)
            await pipe.call("PING")
        server.start()
        assert await pipe.call("PING") == b"PONG"
    finally:
        pipe.drop()
        server.stop()


async def test_the_urls_password_and_database_are_used():
    server = RedisServer().start()
    try:
        server.command("CONFIG", "SET", "requirepass", "s3cret")
        url = f"redis://:s3cret@127.0.0.1:{server.port}/3"
        pipe = Pipe(url, 0.5)
        await pipe.call("SET", "where", "db3")
        assert await pipe.call("CLIENT", "INFO") and (await pipe.call("GET", "where")) == b"db3"
        other = Pipe(f"redis://:s3cret@127.0.0.1:{server.port}/0", 0.5)
        assert await other.call("GET", "where") is None  # (database 0: not there)
        wrong = Pipe(f"redis://:wrong@127.0.0.1:{server.port}/0", 0.5)
        with pytest.raises(ResponseError, match="WRONGPASS|invalid"):
            await wrong.call("PING")
        pipe.drop()
        other.drop()
    finally:
        server.stop()


async def test_nothing_listening_raises_at_once():
    pipe = Pipe(f"redis://127.0.0.1:{free_port()}/0", 0.5)
    with pytest.raises(OSError):
        await pipe.call("PING")


def test_a_prepared_call_is_packed_as_the_whole_call_would_be():
    call = Prepared("return 1", ["k1", "k2"], ["fixed", 3, 2.5], "5ha")
    for rest in (["m", 0, "id", "", ""], ["model-x", 2, "abc.1", "1:abc.0,3:abc.2", "2:1:500"], [""],
                 ["model-x", "0|abc.1|||1800000000000|1", "requests|1|0|0|model-x", "-1"],  # (strings alone)
                 ["modèle", "0|abc.1|||1800000000000|0", "2|0|1|4|0|s:é", "s:é", "l:x"], [],
                 [b'{"a": 1}', "kv:feed", "head"], [b"\xff\x00", "x"]):  # (bytes beside strings: a stored value)
        assert call.command(rest) == hiredis.pack_command(("EVALSHA", "5ha", 2, "k1", "k2", "fixed", 3, 2.5, *rest))
        assert call.args(rest) == ["fixed", 3, 2.5, *rest]


async def test_a_server_silent_while_scripts_load_leaves_no_error_unretrieved():
    """A frozen Redis accepts the connection (the kernel does) and answers nothing: every script the connection
    loads times out, and the set-up's one error reaches the caller, with none left for the loop to log."""
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(1 << 16):  # (until the pipe gives up and closes its end)
            pass
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    unhandled: list[dict] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    try:
        pipe = Pipe(f"redis://127.0.0.1:{port}/0", 0.1, preload=("return 1", "return 2", "return 3"))
        with pytest.raises(TimeoutError):
            await pipe.call("PING")
        await asyncio.sleep(0)
        gc.collect()  # (a future whose exception nobody took is reported when it is collected)
        await asyncio.sleep(0)
        assert unhandled == []
    finally:
        loop.set_exception_handler(None)
        server.close()


async def test_a_call_sent_and_never_awaited_leaves_no_error_unretrieved_when_the_server_freezes(redis_server):
    """A lease given back with `send` whose awaiting was called off (the breaker opened meanwhile): the call's
    timeout is nobody's to hear, and the loop has nothing to log."""
    redis_server.flush()
    pipe = Pipe(redis_server.url, 0.1)
    assert await pipe.call("PING") == b"PONG"
    loop = asyncio.get_running_loop()
    unhandled: list[dict] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    try:
        with redis_server.frozen():
            sent = pipe.send("ZREM", "leases", "a-lease")
            sent.close()  # type: ignore[attr-defined]  # (a coroutine, as when the pipe is up)
            del sent  # (nothing holds the call's future now but the pipe)
            await asyncio.sleep(0.1 + MARGIN)  # (the pipe's own timeout fails the call)
        gc.collect()
        await asyncio.sleep(0)
        assert unhandled == []
        assert await pipe.call("PING") == b"PONG"  # (connected again)
    finally:
        loop.set_exception_handler(None)
        pipe.drop()


async def test_reads_sent_in_one_turn_of_the_event_loop_go_in_one_write_and_a_call_after_them_keeps_the_order(
        redis_server):
    # (the once-a-second reads of every pool: one write a round, not one each)
    redis_server.flush()
    pipe = Pipe(redis_server.url, 2)
    await pipe.call("SET", "k", "v")
    transport = pipe._replies.transport
    writes: list[bytes] = []
    write = transport.write
    transport.write = lambda data: (writes.append(bytes(data)), write(data))[1]
    try:
        reads = [pipe.send_all([("ECHO", f"read {i}"), ("GET", "k")]) for i in range(3)]
        assert writes == []  # (held until the end of this turn)
        replies = [[await r for r in sent] for sent in reads]
        assert len(writes) == 1 and replies == [[f"read {i}".encode(), b"v"] for i in range(3)]

        writes.clear()
        reads = [pipe.send_all([("ECHO", f"read {i}")]) for i in range(2)]
        now = pipe.send("ECHO", "sent now")  # (written at once, after the reads held before it)
        assert len(writes) == 1 and writes[0].index(b"read 1") < writes[0].index(b"sent now")
        assert await now == b"sent now" and [await sent[0] for sent in reads] == [b"read 0", b"read 1"]
        await asyncio.sleep(0)
        assert len(writes) == 1  # (nothing left to write at the end of the turn)
    finally:
        transport.write = write
    pipe.drop()


async def test_an_idle_pipe_leaves_no_timer_to_wake_the_worker_and_one_at_work_keeps_its_watch(redis_server):
    # (each wake-up of an idle process costs it far more CPU than the timer's own work: one every round, for nothing)
    redis_server.flush()
    pipe = Pipe(redis_server.url, 0.5)
    await pipe.call("PING")
    calls = [pipe.send("ECHO", "one"), pipe.send("ECHO", "two")]
    pipe.idle()
    assert pipe._replies._watch is not None  # (calls under way: still watched)
    assert [await c for c in calls] == [b"one", b"two"]
    pipe.idle()
    assert pipe._replies._watch is None
    pipe.drop()

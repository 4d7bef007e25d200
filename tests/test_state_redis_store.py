"""The conversation store over Redis without the event loop waiting on it (rewrite/state/redis/kv.py, feed.py):
a write goes to the worker's own store and, on the pools' pipe without waiting, to Redis with a PUBLISH; every
worker's feed puts it into its own store, so reads are local. A local miss reads Redis with the blocking client
(counted, kept with its TTL left); the breaker open keeps everything in the worker. Over a real redis-server."""

from __future__ import annotations

import copy
import json

import fakeredis
import pytest

import protocols
import protocols.translate as translate
from protocols.evidence import content_mark
from protocols.unified import ToolIds
from rewrite.accounting.metrics import Metrics
from rewrite.conversation.continuity import Continuity
from rewrite.conversation.field_cache import Issuer
from rewrite.conversation.plugin import ConversationState
from rewrite.state.kv import MemoryStore
from rewrite.state.redis.connection import Breaker, connect_sync
from rewrite.state.redis.feed import head, parse
from rewrite.state.redis.kv import RedisStore
from rewrite.state.redis.names import KV
from rewrite.state.redis.shared import SharedState
from tests.support import translate_samples as S
from tests.support.redis_server import RedisServer
from tests.support.timing import FakeClock, eventually

STORED = protocols.registered("openai_responses").continuity


class NoBlocking:
    """A blocking client the test forbids: any use of it fails the test."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the blocking client was used ({name})")


async def listening(url: str, breaker: Breaker | None = None) -> SharedState:
    """One worker's link to Redis (as rewrite/state/sharing.py makes it), its feed subscribed and the entries Redis held
    then listed."""
    shared = SharedState.from_url(url, **({"breaker": breaker} if breaker is not None else {}))
    shared.start()
    await subscribed(shared)
    return shared


async def subscribed(shared: SharedState, epoch: int = 1) -> None:
    feed = shared.feed
    assert feed is not None
    await eventually(lambda: feed.listening and feed.scanned == feed.epoch == epoch, what="the feed subscribed")


def store(shared: SharedState, client=None, name: str = "continuity", clock=None) -> RedisStore:
    local = MemoryStore(100, 1 << 20) if clock is None else MemoryStore(100, 1 << 20, clock=clock)
    return RedisStore(client if client is not None else NoBlocking(), local, shared=shared, name=name)


async def sent(shared: SharedState) -> None:
    """What the worker wrote on its pipe so far is applied (and published): background writes done, then a PING."""
    while shared.tasks:
        for task in list(shared.tasks):
            await task
    assert shared.pipe is not None
    await shared.pipe.call("PING")


async def test_a_put_reaches_every_worker_through_the_channel_and_their_reads_stay_local(redis_server):
    redis_server.flush()
    one, other = await listening(redis_server.url), await listening(redis_server.url)
    clock = FakeClock()
    a, b = store(one), store(other, clock=clock)
    fields = store(other, name="fields")  # the other store of the same worker: not its entries
    value = b"turn one \n with \x00 any bytes"
    a.put("responses:1", value, ttl=30)
    assert a.get("responses:1") == value  # in the writer's own store at once
    await eventually(lambda: b.local.get("responses:1") is not None, what="the entry heard")
    assert b.get("responses:1") == value and fields.local.get("responses:1") is None
    assert a.blocking_reads == b.blocking_reads == 0  # (their blocking clients raise if used)
    redis = connect_sync(redis_server.url)
    assert redis.get(KV + "responses:1") == value and 29_000 < redis.pttl(KV + "responses:1") <= 30_000
    clock.advance(29.9)
    assert b.local.get("responses:1") == value  # heard with its TTL
    clock.advance(0.2)
    assert b.local.get("responses:1") is None

    a.put("responses:2", b"two", ttl=30)
    await eventually(lambda: b.local.get("responses:2") is not None)
    a.delete("responses:2")
    await eventually(lambda: b.local.get("responses:2") is None, what="the deletion heard")
    assert redis.get(KV + "responses:2") is None
    redis.close()
    await one.aclose()
    await other.aclose()


async def test_a_short_ttl_is_kept_in_redis_and_by_every_worker(redis_server):
    redis_server.flush()
    one, other = await listening(redis_server.url), await listening(redis_server.url)
    clock = FakeClock()
    a, b = store(one), store(other, clock=clock)
    a.put("short", b"gone soon", ttl=0.3)
    await eventually(lambda: b.local.get("short") is not None)
    redis = connect_sync(redis_server.url)
    assert 0 <= redis.pttl(KV + "short") <= 300
    clock.advance(0.31)
    assert b.local.get("short") is None
    redis.close()
    await one.aclose()
    await other.aclose()


async def test_a_local_miss_reads_redis_once_and_keeps_what_it_found_for_its_ttl_left(redis_server):
    redis_server.flush()
    redis = connect_sync(redis_server.url)
    redis.set(KV + "before", b"written before this worker listened", px=60_000)
    other = await listening(redis_server.url)
    clock = FakeClock()
    b = store(other, client=connect_sync(redis_server.url), clock=clock)
    assert b.get("before") == b"written before this worker listened" and b.blocking_reads == 1
    assert b.get("before") is not None and b.blocking_reads == 1  # kept locally: not read again
    clock.advance(59.5)
    assert b.local.get("before") is not None
    clock.advance(1)
    assert b.local.get("before") is None  # (with Redis's TTL left, not a fresh one)

    # Not in Redis when the feed subscribed, and not heard of since: absent, without a read (most field cache
    # lookups: a turn with nothing kept)
    assert b.get("never") is None and b.blocking_reads == 1
    one = await listening(redis_server.url)
    store(one).put("never", b"written now", ttl=30)
    await eventually(lambda: b.local.get("never") is not None)
    assert b.get("never") == b"written now" and b.blocking_reads == 1

    small = store(other, client=connect_sync(redis_server.url), name="fields")
    small.local.max_entries = 2
    writer = store(one, name="fields")
    for n in range(3):
        writer.put(f"turn:{n}", b"kept", ttl=30)
    await eventually(lambda: small.local.get("turn:2") is not None)
    assert small.local.get("turn:0") is None  # pushed out by the bound: read from Redis when asked for
    assert small.get("turn:0") == b"kept" and small.blocking_reads == 1

    assert other.feed is not None
    other.feed.epoch += 1  # another subscription (a reconnection) not listed yet: a miss may be a missed write
    assert b.get("missed") is None and b.get("missed") is None and b.blocking_reads == 2  # (asked once)
    redis.close()
    await one.aclose()
    await other.aclose()


async def test_a_worker_that_reconnects_resubscribes_and_reads_what_it_missed_from_redis():
    server = RedisServer().start()
    try:
        one, other = await listening(server.url), await listening(server.url)
        assert other.feed is not None
        b = store(other, client=connect_sync(server.url))
        assert b.get("later") is None and b.blocking_reads == 0
        server.command("CLIENT", "KILL", "TYPE", "pubsub")  # (the feeds' connections only)
        connect_sync(server.url).set(KV + "later", b"written meanwhile", px=30_000)  # (a write it did not hear)
        await subscribed(other, epoch=2)
        assert b.get("later") == b"written meanwhile" and b.blocking_reads == 1
        await one.aclose()
        await other.aclose()
    finally:
        server.stop()


async def test_a_feed_whose_task_ended_listens_again_at_the_next_flush_without_a_request(redis_server):
    redis_server.flush()
    shared = SharedState.from_url(redis_server.url, flush_interval=0.05)
    shared.start()
    await subscribed(shared)
    feed = shared.feed
    assert feed is not None and shared.started and feed._task is not None
    ended = feed._task
    ended.cancel()  # (as an error the feed's loop does not catch would end it)
    # (its end, not a look at `listening`: with the flusher every 0.05 s that is False only a moment, which a loaded
    # machine's poll may miss)
    await eventually(ended.done, what="the feed's task ended")
    await subscribed(shared, epoch=2)  # (the flusher started it again: no pick, lease or count asked)
    await shared.aclose()


async def test_the_breaker_open_keeps_every_write_and_read_in_the_worker(redis_server):
    redis_server.flush()
    clock = FakeClock()
    one, other = await listening(redis_server.url, Breaker(5, clock=clock)), await listening(redis_server.url)
    a, b = store(one), store(other)
    a.put("first", b"shared", ttl=30)
    await sent(one)
    one.breaker.failed(ConnectionError("test"))  # Redis did not answer a call of the pools
    a.put("kept here", b"local only", ttl=30)
    assert a.get("kept here") == b"local only"
    assert a.get("unknown") is None and a.blocking_reads == 0  # no blocking read while it is open
    clock.advance(5)  # the breaker tries Redis again
    a.put("marker", b"after", ttl=30)
    await eventually(lambda: b.local.get("marker") is not None)  # (the feed delivers in order)
    assert b.local.get("first") == b"shared" and b.local.get("kept here") is None
    redis = connect_sync(redis_server.url)
    assert redis.get(KV + "kept here") is None and redis.get(KV + "marker") == b"after"
    redis.close()
    await one.aclose()
    await other.aclose()


ANSWER = [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "18C."}]}]


async def answered_and_heard(url: str, blocking: bool = True) -> tuple[SharedState, SharedState, ConversationState]:
    """Two workers sharing `url` (their links, then the second's conversation state): the first has recorded a
    Responses answer, resp_1, and the second's store has heard of it. Without `blocking`, neither may read Redis
    with its blocking client."""
    one, other = await listening(url), await listening(url)
    first, second = ConversationState(), ConversationState()
    first.share(url, one)
    second.share(url, other)
    if not blocking:
        for state in (first, second):
            for kept in (state.fields.store, state.continuity.store):
                assert isinstance(kept, RedisStore)
                kept.client = NoBlocking()
    first.continuity.record(STORED, "resp_1", {"model": "gpt-4o", "input": "Weather in Paris?"}, ANSWER, "openai",
                            native=False)
    held = second.continuity.store
    assert isinstance(held, RedisStore)
    await eventually(lambda: len(held.local) == 1, what="the record heard")
    return one, other, second


def assert_continues(state: ConversationState) -> None:
    """A follow-up naming resp_1, sent to a target that cannot resolve it, carries the first turn's answer."""
    follow_up = {"model": "gpt-4o", "previous_response_id": "resp_1", "input": "And tomorrow?"}
    expanded = state.continuity.expand(STORED, follow_up, "anthropic", resolves=False).body
    assert [item.get("content") for item in expanded["input"]][1] == ANSWER[0]["content"]


async def test_a_responses_conversation_continues_on_another_worker_without_a_blocking_read(redis_server):
    redis_server.flush()
    one, other, second = await answered_and_heard(redis_server.url, blocking=False)
    assert_continues(second)
    assert second.blocking_reads == 0
    await one.aclose()
    await other.aclose()


async def test_a_previous_response_another_worker_wrote_a_moment_ago_is_read_before_its_message_is_heard(
        redis_server):
    """The client was answered by one worker and names that response at once to another, whose feed has not heard
    the record's write yet: the feed holds the key absent, which spares most lookups (the field cache's) a read; a
    lookup of an entry the client named reads Redis."""
    redis_server.flush()
    one, other, second = await answered_and_heard(redis_server.url)
    held = second.continuity.store
    assert isinstance(held, RedisStore)
    [key] = list(held.local._entries)
    held.local.delete(key)  # as it is before its message is heard
    assert held.get(key) is None and second.blocking_reads == 0  # (a lookup nobody named: absent, no read)
    assert_continues(second)
    assert second.blocking_reads == 1
    await one.aclose()
    await other.aclose()


@pytest.fixture(params=["fakeredis", "redis-server"])
def blocking_client(request):
    """A blocking client of a fakeredis server, or of the real server emptied."""
    if request.param == "fakeredis":
        return fakeredis.FakeRedis(server=fakeredis.FakeServer())
    server = request.getfixturevalue("redis_server")
    server.flush()
    return connect_sync(server.url)


def test_the_key_that_made_an_entry_is_read_back_by_another_worker_and_one_from_before_names_none(blocking_client):
    """The continuity and field cache entries name the pooled key that made them (by fingerprint), which a worker
    reading them from Redis gets back; an entry written before keys were recorded reads as made by a key not known."""
    writer, reader = ConversationState(), ConversationState()
    for state in (writer, reader):  # (no event loop: writes and reads with the blocking client)
        state.fields.store = RedisStore(blocking_client, MemoryStore(100, 1 << 20), name="fields")
        state.continuity.store = RedisStore(blocking_client, MemoryStore(100, 1 << 20), name="continuity")
    stored = protocols.registered("openai_responses").continuity
    answer = [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "18C."}]}]
    asked = {"model": "gpt-4o", "input": "Weather in Paris?"}
    writer.continuity.record(stored, "resp_1", asked, answer, "openai", native=True, key="fp-of-key-a")
    before = {"previous": None, "input": [], "output": answer, "provider": "openai", "native": True, "stored": True}
    blocking_client.set(KV + Continuity._key("", "resp_0"), json.dumps(before).encode(), px=60_000)
    assert reader.continuity.holder(stored, {"previous_response_id": "resp_1"}, "openai") == "fp-of-key-a"
    assert reader.continuity.holder(stored, {"previous_response_id": "resp_0"}, "openai") == ""

    client_request = translate.request_to_ir("anthropic_messages", S.anthropic_request())
    for key in ("fp-of-key-b", ""):
        scope = Issuer("openai", "o4-mini", "openai_responses", client=f"client of {key or 'before'}")
        unified = translate.get("openai_responses").answer_to_ir(copy.deepcopy(S.RESPONSES_ANSWER), ToolIds())
        writer.fields.capture(scope, unified, client_request, key)
        client_answer = translate.get("anthropic_messages").answer_from_ir(unified, client_request)
        replay = translate.request_to_ir("anthropic_messages", S.anthropic_replay(S.anthropic_request(),
                                                                                  client_answer))
        restored = reader.fields.restore(scope, replay)
        assert restored.parts == 1
        assert restored.made == ({key: {content_mark(S.RESPONSES_ENCRYPTED)}} if key else {})
    assert reader.blocking_reads >= 3  # (read from Redis: the reader's own stores never held them)


def test_a_message_names_its_worker_store_ttl_and_key():
    message = head("w1", "fields", 1500, "k é y") + b"v a l"
    assert parse(message) == ("w1", "fields", 1500, "k é y", b"v a l")
    assert parse(b"not one of ours") is None


def test_the_blocking_reads_are_in_the_metrics():
    body, _ = Metrics(store_reads=lambda: 3).exposition()
    assert b"rotator_conversation_store_blocking_reads_total 3.0" in body

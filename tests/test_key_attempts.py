"""The attempts on one target over its payer's credentials (rewrite/exchange/keys.py KeyAttempts), given what one
attempt on one credential does: the seam an HTTP request and a WebSocket upgrade share."""

from __future__ import annotations

import asyncio

import pytest

from rewrite.config import parse
from rewrite.config_settings import StreamingConfig
from rewrite.exchange.job import Job
from rewrite.exchange.keys import KeyAttempts
from rewrite.lifecycle.payer import Ticket
from rewrite.policy.outcomes import FailureKind
from rewrite.policy.retry import Failure, KeyRest
from rewrite.pool.decisions import Pick
from rewrite.routing.router import Router
from tests.support.engine_harness import key_attempts_of

pytestmark = pytest.mark.virtual_time  # (tests/support/virtual_time.py)


def key_attempts(keys: str, retries: int = 2, first_token_timeout: float = 5) -> KeyAttempts:
    cfg = parse(f"providers: {{openai: {{base_url: 'http://vendor.test', keys: [{keys}]}}}}")
    route = Router(cfg).route("api.openai.com", "POST", "/v1/chat/completions")
    streaming = StreamingConfig(first_token_timeout=first_token_timeout, idle_timeout=5, heartbeat_interval=30,
                                first_token_retries=retries)
    return key_attempts_of(Job("job-0001", route, route.provider), streaming, "gpt-4o")


def key_attempts_on(other: KeyAttempts) -> KeyAttempts:
    """Attempts of another request on `other`'s pool."""
    return key_attempts_of(Job("job-0002", other.ctx.job.route, other.ctx.job.route.provider), other.ctx.streaming, other.model)


async def test_a_failed_key_is_followed_by_another_and_the_pool_is_told():
    keys = key_attempts("sk-one-aaaaaaaa, sk-two-bbbbbbbb")
    tried: list[str | None] = []

    async def attempt(ticket: Ticket) -> Failure | None:
        tried.append(ticket.key)
        return Failure(FailureKind.STATUS, "status 500", 500) if len(tried) == 1 else None

    assert await keys.run(attempt) is None
    assert len(tried) == 2 and tried[0] != tried[1] and keys.key == tried[1] and keys.tried
    assert [n["kind"] for n in keys.ctx.job.notes] == ["retry"]
    assert "sk-" not in keys.ctx.job.notes[0]["detail"]  # (a pooled key is never said in full)


async def test_a_failure_that_is_not_retried_ends_the_attempts_at_once():
    keys = key_attempts("sk-one-aaaaaaaa, sk-two-bbbbbbbb")
    tried: list[str | None] = []

    async def attempt(ticket: Ticket) -> Failure | None:
        tried.append(ticket.key)
        return Failure(FailureKind.STATUS, "bad request", 400, retryable=False)

    failure = await keys.run(attempt)
    assert failure is not None and failure.reason == "bad request" and len(tried) == 1


async def test_no_attempt_when_the_vendor_rejected_every_key():
    keys = key_attempts("sk-one-aaaaaaaa")
    pool = keys.provider.pool
    assert pool is not None
    pool.rests.reject("sk-one-aaaaaaaa")
    tried: list[str | None] = []

    async def attempt(ticket: Ticket) -> Failure | None:
        tried.append(ticket.key)
        return None

    failure = await keys.run(attempt)
    assert failure is not None and failure.status == 401 and failure.reason == "every key rejected"
    assert tried == [] and not keys.tried and keys.ctx.job.key is None


async def test_a_kept_lease_holds_the_key_at_its_max_concurrent_until_it_is_closed():
    keys = key_attempts("{key: sk-one-aaaaaaaa, max_concurrent: 1}", retries=0, first_token_timeout=30)
    pool = keys.provider.pool
    assert pool is not None

    async def served(ticket: Ticket) -> Failure | None:
        return None

    assert await keys.run(served, keep_lease=True) is None and keys.held is not None  # (a WebSocket, open)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    busy = await key_attempts_on(keys).run(served)
    assert busy is not None and busy.reason == "every key busy"
    assert loop.time() - t0 == 30  # (the lease was waited for up to the first-token timeout)

    await keys.held.aclose()  # (the socket closed)
    assert await key_attempts_on(keys).run(served) is None
    assert pool.pick(None, "gpt-4o").key == "sk-one-aaaaaaaa"  # the plain run gave its lease back


async def test_a_key_picked_with_a_wait_is_held_and_counted_only_once_the_wait_is_over():
    keys = key_attempts("{key: sk-one-aaaaaaaa, max_concurrent: 1}", first_token_timeout=5)
    pool = keys.provider.pool
    assert pool is not None
    pool.rests.failed("sk-one-aaaaaaaa", Failure(FailureKind.STATUS, "status 429", 429, delay=2.0,
                                                 rest=KeyRest("rate limited, status 429")), "gpt-4o")
    state = pool.by_secret["sk-one-aaaaaaaa"]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    seen: list[tuple[float, int, int]] = []

    async def served(ticket: Ticket) -> Failure | None:
        seen.append((loop.time() - t0, state.in_flight, state.usage.total.requests))
        return None

    running = asyncio.ensure_future(keys.run(served))
    await asyncio.sleep(1)  # (the key rests 2 s: the attempt waits it out)
    assert (state.in_flight, state.usage.total.requests) == (0, 0)  # not held, nor counted, meanwhile
    assert await running is None
    assert seen == [(2.0, 1, 1)] and state.in_flight == 0  # held and counted from the wait's end; given back


async def test_a_key_picked_with_a_wait_is_given_back_at_once_when_its_client_leaves_during_the_wait(monkeypatch):
    """The pick is given back when the client leaves (its slot, held by a shared pick, free for another request),
    not when the flow is collected or its lease expires; the key was never held."""
    keys = key_attempts("{key: sk-one-aaaaaaaa, max_concurrent: 1}", first_token_timeout=5)
    pool = keys.provider.pool
    assert pool is not None
    pool.rests.failed("sk-one-aaaaaaaa", Failure(FailureKind.STATUS, "status 429", 429, delay=2.0,
                                                 rest=KeyRest("rate limited, status 429")), "gpt-4o")
    dropped: list[float] = []
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(Pick, "drop", lambda pick: dropped.append(loop.time()))
    tried: list[Ticket] = []

    async def served(ticket: Ticket) -> Failure | None:
        tried.append(ticket)
        return None

    running = asyncio.ensure_future(keys.run(served))
    await asyncio.sleep(1)
    left = loop.time()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert dropped == [left] and tried == [] and pool.by_secret["sk-one-aaaaaaaa"].in_flight == 0

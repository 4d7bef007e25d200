"""How Rotator talks to Redis, and what it does when Redis does not answer.

redis-py's defaults would hang every request on a frozen server (5 s socket timeouts, retried) or fail at once when
its pool is used up. Here: 0.25 s timeouts, no hidden retries, a bounded pool that waits as briefly; and a breaker
that, on any error, sends every decision to the process's own state for a while, said once per outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeout
from redis.retry import Retry

logger = logging.getLogger("rotator")

TIMEOUT = 0.25  # seconds for a connection, a command, or a free connection of the pool
POOL_SIZE = 32  # connections per process
BREAKER_SECONDS = 5.0  # after an error, decisions stay local this long before Redis is tried again
START_SECONDS = 2.0  # a starting worker's first contact is tried this long before the breaker hears of a failure
# What a Redis call that did not work raises: the server's errors, timeouts, refused or dropped connections.
ERRORS = (RedisError, OSError, asyncio.TimeoutError)
TIMEOUTS = (RedisTimeout, asyncio.TimeoutError)  # (of which: no answer in time, which a busy event loop can cause)


def timed_out(error: BaseException) -> bool:
    """No answer in time: one of TIMEOUTS, or what redis-py makes of one while it sets a Unix socket's connection
    up (a ConnectionError "Timeout reading from <path>" whose cause is the timeout; over TCP, the timeout itself)."""
    return isinstance(error, TIMEOUTS) or isinstance(error.__cause__, TIMEOUTS)


def _options(timeout: float) -> dict:
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry": Retry(NoBackoff(), 0),
            "timeout": timeout, "max_connections": POOL_SIZE, "health_check_interval": 0}


def connect(url: str, timeout: float = TIMEOUT) -> redis.asyncio.Redis:
    """An asyncio client of `url` (connections are made on first use, on the loop that uses them)."""
    pool = redis.asyncio.BlockingConnectionPool.from_url(url, **_options(timeout))
    return redis.asyncio.Redis(connection_pool=pool)


def connect_sync(url: str, timeout: float = TIMEOUT) -> redis.Redis:
    """A blocking client of `url`, for the conversation store (rewrite/state/redis/kv.py)."""
    return redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(url, **_options(timeout)))


class Unavailable(Exception):
    """Redis did not answer, or the breaker is open: decide locally."""


class Breaker:
    """Open (decide locally) for `seconds` after a failed call; then one call at a time tries Redis again (`admit`),
    the others deciding locally without waiting for it, until one works (closed) or fails (open again). The log says
    when Redis stopped answering and when it answered again, once each per outage."""

    def __init__(self, seconds: float = BREAKER_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._retry_at = 0.0
        self.broken = False  # since the last call that failed, none has worked
        self.on_recovered: Callable[[], None] | None = None  # called once when Redis answers after an outage
        self.probing = False  # the one call trying Redis again after an outage is under way

    @property
    def open(self) -> bool:
        return self.probing or self._clock() < self._retry_at

    def admit(self) -> bool:
        """Whether a call may go to Redis now: while the breaker is closed, every call; after an outage's `seconds`,
        the first (the probe) alone, which must then be answered `worked`, `failed` or `abandoned`."""
        if self.open:
            return False
        self.probing = self.broken
        return True

    def abandoned(self) -> None:
        """The probe ended without a verdict (cancelled): the next call tries Redis again."""
        self.probing = False

    def failed(self, error: BaseException) -> None:
        self.probing = False
        self._retry_at = self._clock() + self.seconds
        if not self.broken:
            logger.warning("rotator: state.redis: Redis did not answer (%s); each worker decides on its own state, "
                           "trying Redis again every %g s", _why(error), self.seconds)
        self.broken = True

    def worked(self) -> None:
        self.probing = False
        self._retry_at = 0.0  # (a call begun before another failed: Redis answers now)
        if self.broken:
            self.broken = False
            logger.warning("rotator: state.redis: Redis answers again; this worker's rests and counts merged back")
            if self.on_recovered is not None:
                self.on_recovered()


def _why(error: BaseException) -> str:
    text = str(error).split("\n")[0][:120]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__

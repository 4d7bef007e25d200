"""A script nobody waits for (a binding, a window's spend, a conversation-store entry): written at once on the pools'
pipe when it is connected, so that any call this worker sends after it reaches Redis after it; else in the
background while the pipe connects, and lost if Redis does not answer (the caller keeps its own view meanwhile).
A rest is written the same way but kept pending when lost (rewrite/state/redis/rests.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rewrite.state.redis.connection import Unavailable

if TYPE_CHECKING:
    from rewrite.state.redis.link import RedisLink
    from rewrite.state.redis.names import PoolKeys

# The script's Redis keys and arguments, made from the pool's key fingerprints (none outside a pool).
Build = Callable[[list[str]], tuple[list[str], list[Any]]]


def write_soon(shared: RedisLink, body: str, build: Build, keys: PoolKeys | None = None) -> None:
    """Send the script `body` with what `build` makes of `keys`' fingerprints, without waiting for its reply."""
    fps = keys.fps if keys is not None else []
    pipe = shared.pipe
    if (keys is not None and not fps) or pipe is None or not shared.ready():
        shared.background(_written(shared, body, build, keys))
        return
    redis_keys, args = build(fps)
    shared.script_soon(pipe.prepare(body, redis_keys, []), args, then=_ignore, otherwise=_nothing)


async def _written(shared: RedisLink, body: str, build: Build, keys: PoolKeys | None) -> None:
    with contextlib.suppress(Unavailable):
        redis_keys, args = build(await keys.fingerprints() if keys is not None else [])
        await shared.script(body, redis_keys, args)


def _ignore(_: Any) -> None:
    """(The reply of a write nobody waits for.)"""


def _nothing() -> None:
    """(A write Redis did not take: the caller's own view holds it.)"""

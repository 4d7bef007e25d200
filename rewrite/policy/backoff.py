"""The one backoff: how long to wait after failures in a row when nobody named a delay.

Its callers: a retry on the same key (rewrite/policy/retry.py `wait_before`), a key's cooldown after an error answer
that named no delay, and a key's rest after a stall (rewrite/pool/keypool.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff(attempt: int, *, base: float, cap: float, factor: float = 2.0, jitter: float = 0.0,
            rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failure number `attempt` in a row (from 0): `base` times `factor` to the power of
    `attempt`, at most `cap`. `jitter` (0 to 1) is the share of that drawn at random (`rng` gives [0, 1)): 0.5 waits
    between half of it and all of it, so that waits begun together do not all end together."""
    try:
        delay = min(base * factor ** max(attempt, 0), cap)
    except OverflowError:  # (a long run of failures: far past the cap)
        delay = cap
    return delay * (1 - jitter + jitter * rng()) if jitter else delay

"""The start-up block Rotator logs once the proxy serves, as the first-minutes tests read it."""

from __future__ import annotations

import contextlib

from tests.support.timing import wait_until


def start_up_block(log: str) -> str:
    at = log.index("rotator: ready.")
    block = log[at:].split("\n[", 1)[0]  # up to the next log line
    return block


def wait_for_block(proxy, last: str = "--print-env") -> str:
    """The start-up block, once its `last` line is logged (it is logged as the proxy starts serving)."""
    with contextlib.suppress(AssertionError):  # (the caller reads what the block holds, whole or not)
        wait_until(lambda: last in proxy.full_log)
    return start_up_block(proxy.full_log)

"""The start-up block Rotator logs once the proxy serves, as the first-minutes tests read it."""

from __future__ import annotations

import time


def start_up_block(log: str) -> str:
    at = log.index("rotator: ready.")
    block = log[at:].split("\n[", 1)[0]  # up to the next log line
    return block


def wait_for_block(proxy, last: str = "CURL_CA_BUNDLE") -> str:
    """The start-up block, once its `last` line is logged (it is logged as the proxy starts serving)."""
    deadline = time.monotonic() + 10
    while last not in proxy.full_log and time.monotonic() < deadline:
        time.sleep(0.05)
    return start_up_block(proxy.full_log)

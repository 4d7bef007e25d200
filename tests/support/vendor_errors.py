"""Error answers as the engine reads and decides on them: the reader of the upstream's protocol
(protocols/vendor_errors.py), then the retry policy (rewrite/policy/retry.py)."""

from __future__ import annotations

import time
from collections.abc import Iterable

import protocols
from protocols.vendor_errors import VendorError
from rewrite.policy import retry

CHAT = "openai_chat"


def read(status: int, headers: Iterable[tuple[str, str]] = (), body: bytes = b"", now: float | None = None,
         protocol: str = CHAT) -> VendorError:
    return protocols.registered(protocol).family.errors.read(status, list(headers), body,
                                                             time.time() if now is None else now)


def failure(status: int, headers: Iterable[tuple[str, str]] = (), body: bytes = b"", pooled: bool = True,
            now: float | None = None, protocol: str = CHAT) -> retry.Failure | None:
    """What the engine makes of an error answer to a request of `protocol`."""
    headers = list(headers)
    return retry.decide(read(status, headers, body, now, protocol), headers, body, pooled)

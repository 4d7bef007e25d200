"""What a plug-in sees of a request: the read-only views its events carry (rewrite/lifecycle/events.py), and what a
part may answer. Each view is a Protocol the spine's own objects satisfy as they are (nothing is copied for a
plug-in), typed with what plug-ins read and nothing else: a plug-in types against these, never against
rewrite/exchange/, and the spine against these where a plug-in answers it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol


class Tapped(Protocol):
    """What keeps an upstream answer's raw body as the attempt reads it (a part's answer to `tap`)."""

    def add(self, data: bytes) -> None: ...

    def reader(self, next_piece: Callable[[], Awaitable[bytes]]) -> Callable[[], Awaitable[bytes]]: ...

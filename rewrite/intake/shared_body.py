"""A large body handed to the parsing worker (rewrite/intake/big_json.py) through memory both processes map, not
through the worker's stdin.

Through the pipe, each 64 KiB of the body is a write, a wake-up of the worker and a read on both sides: about 7 ms
of CPU for an 8 MiB body on this kind of machine. Copied into a mapping that stays mapped in both processes it is
about 1 ms. The mapping (an anonymous memfd) is made once, SIZE bytes, and holds the largest body it was given
since (its pages stay the worker's); a larger body goes through the pipe as before, and so does every body where
memfd_create is missing (not Linux).
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Sequence

SIZE = 16 << 20  # the largest body handed over in memory


class SharedBody:
    """The proxy's side: a memfd of SIZE bytes, mapped once; `fd` is passed to the worker it starts."""

    def __init__(self, size: int = SIZE) -> None:
        self.fd: int | None = None
        self._map: mmap.mmap | None = None
        with contextlib.suppress(AttributeError, OSError):  # (no memfd_create: the pipe carries every body)
            fd = os.memfd_create("rotator-body", os.MFD_CLOEXEC)
            try:
                os.ftruncate(fd, size)
                self._map = mmap.mmap(fd, size)
            except OSError:
                os.close(fd)
                raise
            self.fd = fd

    def holds(self, size: int) -> bool:
        return self._map is not None and size <= len(self._map)

    def write(self, pieces: Sequence[bytes | memoryview]) -> None:
        """The body's pieces, from the start of the mapping (the caller checked that it `holds` them)."""
        assert self._map is not None
        at = 0
        for piece in pieces:
            self._map[at : at + len(piece)] = piece
            at += len(piece)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def reader(fd: int) -> mmap.mmap:
    """The worker's side: the same memory, mapped read-only once."""
    return mmap.mmap(fd, 0, prot=mmap.PROT_READ)

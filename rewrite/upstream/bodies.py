"""Upstream bodies as the engine reads them: decoded in bounded steps, and never past a cap.

Rotator asks upstreams for `identity`, but decodes what comes back encoded anyway. Decoding one read at a time,
as httpx does, turns a few compressed bytes into any amount of memory (1 MiB of gzip is 1 GiB of zeros): here
each step gives at most `STEP` bytes, and a body that decodes past its cap raises BodyTooLarge (a DecodingError, so
the engine treats it as a cut like any undecodable body).
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable

import httpx

from rewrite.internals import content_decoder

STEP = 1 << 20  # the most bytes one decoding step gives
_SLICE = 256  # encoded bytes per step for decoders without an output limit (br, zstd)

NextPiece = Callable[[], Awaitable[bytes]]


class BodyTooLarge(httpx.DecodingError):
    def __init__(self, cap: int) -> None:
        super().__init__(f"upstream body grew past {cap} bytes")


class _Layer:
    """One content-encoding's decoder, pulling what it decodes from `source` (the layer before it; None for the
    first, which is given the raw pieces)."""

    def __init__(self, source: _Layer | None) -> None:
        self.source = source
        self.pending = b""  # encoded bytes given but not decoded yet

    def pull(self, n: int) -> bytes:
        """Up to `n` decoded bytes; b"" once everything given so far is decoded."""
        while True:
            if self.pending:
                out = self._step(n)
                if out:
                    return out
                if self.pending:
                    continue
            more = self.source.pull(STEP) if self.source is not None else b""
            if not more:
                return b""
            self.pending = more

    def end(self) -> bytes:
        return b""

    def _step(self, n: int) -> bytes:
        raise NotImplementedError


class _Zlib(_Layer):
    """gzip or deflate, with zlib's own output limit. deflate is zlib-wrapped as RFC 9110 says, or raw as some
    servers send it (told apart by its first bytes, as httpx does by trying)."""

    def __init__(self, source: _Layer | None, gzip: bool) -> None:
        super().__init__(source)
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 16) if gzip else None

    def _step(self, n: int) -> bytes:
        if self._z is None:
            head = self.pending[:2]
            wrapped = len(head) < 2 or (head[0] & 0x0F == 8 and int.from_bytes(head) % 31 == 0)
            self._z = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        try:
            out = self._z.decompress(self.pending, n)
        except zlib.error as e:
            raise httpx.DecodingError(str(e)) from e
        self.pending = self._z.unconsumed_tail
        return out


class _Sliced(_Layer):
    """Another encoding httpx can decode (br, zstd): fed a small slice at a time, so one step's output stays
    bounded by the encoding's ratio."""

    def __init__(self, source: _Layer | None, decoder) -> None:
        super().__init__(source)
        self._decoder = decoder
        self._out = b""

    def pull(self, n: int) -> bytes:
        if not self._out:
            self._out = super().pull(n)
        out, self._out = self._out[:n], self._out[n:]
        return out

    def _step(self, n: int) -> bytes:
        data, self.pending = self.pending[:_SLICE], self.pending[_SLICE:]
        return self._decoder.decode(data)

    def end(self) -> bytes:
        return self._out + self._decoder.flush()


def _layers(encodings: str) -> _Layer | None:
    """The decoder of a Content-Encoding header's value (the last encoding applied is decoded first); None when
    there is nothing to decode."""
    layer: _Layer | None = None
    for name in reversed([e.strip().lower() for e in encodings.split(",") if e.strip()]):
        if name == "identity":
            continue
        if name in ("gzip", "x-gzip", "deflate"):
            layer = _Zlib(layer, gzip=name != "deflate")
        elif (decoder := content_decoder(name)) is not None:  # (br and zstd, when their packages are there)
            layer = _Sliced(layer, decoder)
        else:
            raise httpx.DecodingError(f"content-encoding {name!r} is not one Rotator decodes")
    return layer


def decoded(raw: NextPiece, encodings: str, cap: int) -> NextPiece:
    """The body read by `raw` (b"" at its end), decoded under `encodings`: pieces of at most STEP bytes, and
    BodyTooLarge once they add up to more than `cap`."""
    try:
        outermost = _layers(encodings)
    except httpx.DecodingError as e:
        refusal = e

        async def refused() -> bytes:
            raise refusal

        return refused
    if outermost is None:
        return raw
    first = outermost
    while first.source is not None:
        first = first.source
    size = 0
    ended = False

    async def next_piece() -> bytes:
        nonlocal size, ended
        while True:
            out = outermost.pull(STEP)
            if not out and ended:
                return b""
            if not out:
                more = await raw()
                if more:
                    first.pending += more
                    continue
                ended = True
                out = outermost.end()
                if not out:
                    return b""
            size += len(out)
            if size > cap:
                raise BodyTooLarge(cap)
            return out

    return next_piece


async def read_whole(next_piece: NextPiece, cap: int) -> bytes:
    """The whole body `next_piece` reads; BodyTooLarge past `cap` bytes (what has been read of it is dropped)."""
    pieces = []
    size = 0
    while piece := await next_piece():
        size += len(piece)
        if size > cap:
            raise BodyTooLarge(cap)
        pieces.append(piece)
    return b"".join(pieces)

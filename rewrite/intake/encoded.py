"""Request bodies a client sent content-encoded (Codex compresses its ChatGPT-mode bodies with zstd): decoded to be
read (repairs, views, routes), sent on as they came while nothing rewrites them, and encoded again the way the client
sent them when something does. Decoding is bounded: a few compressed bytes must not become any amount of memory.
(Whether a body is encoded is read with the rest of the request: rewrite/exchange/request.py, `encoding_of`.)"""

from __future__ import annotations

import sys
import zlib

try:  # (the zstd mitmproxy itself decodes with: the standard library's from Python 3.14, its backport before)
    if sys.version_info >= (3, 14):
        from compression import zstd
    else:
        from backports import zstd
except ImportError:  # a mitmproxy without it: zstd bodies are then forwarded untouched, unread
    zstd = None  # type: ignore[assignment]

ERRORS: tuple[type[Exception], ...] = (zlib.error, ValueError, *(() if zstd is None else (zstd.ZstdError,)))
_ZLIB = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}


def decode(body: bytes, encoding: str, limit: int) -> bytes | None:
    """`body` decoded; None when it does not decode, decodes to more than `limit` bytes, or is in an encoding Rotator
    does not read (one layer of zstd, gzip or deflate)."""
    try:
        if encoding == "zstd" and zstd is not None:
            out = _zstd(body, limit)
        elif encoding in _ZLIB:
            z = zlib.decompressobj(_ZLIB[encoding])
            out = z.decompress(body, limit + 1)
            if not z.eof:
                return None
        else:
            return None
    except ERRORS:
        return None
    return out if out is not None and len(out) <= limit else None


def _zstd(body: bytes, limit: int) -> bytes | None:
    """Each frame of `body` in turn, no more than `limit + 1` bytes decoded in all; None for a body cut short."""
    pieces: list[bytes] = []
    size, data = 0, body
    while data:
        d = zstd.ZstdDecompressor()
        piece = d.decompress(data, max_length=limit + 1 - size)
        while True:
            pieces.append(piece)
            size += len(piece)
            if size > limit or d.eof or d.needs_input:
                break
            piece = d.decompress(b"", max_length=limit + 1 - size)
        if size > limit:
            return b"".join(pieces)
        if not d.eof:
            return None
        data = d.unused_data
    return b"".join(pieces)


def encode(body: bytes, encoding: str) -> bytes:
    """`body` encoded as `encoding` (one `decode` reads)."""
    if encoding == "zstd":
        assert zstd is not None  # (only what `decode` read is encoded again)
        return zstd.compress(body, level=3)
    z = zlib.compressobj(wbits=_ZLIB[encoding])
    return z.compress(body) + z.flush()

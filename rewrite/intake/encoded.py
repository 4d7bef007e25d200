"""Request bodies a client sent content-encoded (Codex compresses its ChatGPT-mode bodies with zstd): decoded to be
read (repairs, views, routes), sent on as they came while nothing rewrites them, and encoded again the way the client
sent them when something does. Decoding is bounded: a few compressed bytes must not become any amount of memory."""

from __future__ import annotations

import io
import zlib

import zstandard

READ = 1 << 16  # decoded bytes per step
IDENTITY = ("", "identity")
_ZLIB = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}


def encoding_of(headers: list[tuple[str, str]]) -> str | None:
    """A request's content-encoding, lowercased (None for none, or identity)."""
    value = next((v for n, v in headers if n.lower() == "content-encoding"), "").strip().lower()
    return None if value in IDENTITY else value


def decode(body: bytes, encoding: str, limit: int) -> bytes | None:
    """`body` decoded; None when it does not decode, decodes to more than `limit` bytes, or is in an encoding Rotator
    does not read (one layer of zstd, gzip or deflate)."""
    try:
        if encoding == "zstd":
            pieces, size = [], 0
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body), read_across_frames=True) as reader:
                while size <= limit and (piece := reader.read(READ)):
                    pieces.append(piece)
                    size += len(piece)
            out = b"".join(pieces)
        elif encoding in _ZLIB:
            z = zlib.decompressobj(_ZLIB[encoding])
            out = z.decompress(body, limit + 1)
            if not z.eof:
                return None
        else:
            return None
    except (zstandard.ZstdError, zlib.error):
        return None
    return out if len(out) <= limit else None


def encode(body: bytes, encoding: str) -> bytes:
    """`body` encoded as `encoding` (one `decode` reads)."""
    if encoding == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(body)
    z = zlib.compressobj(wbits=_ZLIB[encoding])
    return z.compress(body) + z.flush()

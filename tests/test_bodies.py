"""Upstream bodies decoded in bounded steps and never past their cap (rewrite/upstream/bodies.py)."""

import zlib

import httpx
import pytest
import zstandard

from rewrite.upstream.bodies import STEP, BodyTooLarge, decoded, read_whole

TEXT = b"data: hello\n\n" * 1000


def raw_reader(data: bytes, piece: int = 65536):
    pieces = [data[i : i + piece] for i in range(0, len(data), piece)]

    async def next_piece() -> bytes:
        return pieces.pop(0) if pieces else b""

    return next_piece


def gzip(data: bytes) -> bytes:
    return zlib.compress(data, wbits=31)


def raw_deflate(data: bytes) -> bytes:
    z = zlib.compressobj(wbits=-15)
    return z.compress(data) + z.flush()


@pytest.mark.parametrize("encoding, encode", [
    ("gzip", gzip),
    ("x-gzip", gzip),
    ("deflate", zlib.compress),
    ("deflate", raw_deflate),
    ("zstd", lambda d: zstandard.ZstdCompressor().compress(d)),
    ("gzip, gzip", lambda d: gzip(gzip(d))),
    ("identity, gzip", gzip),
])
async def test_each_encoding_decodes_to_the_body(encoding, encode):
    assert await read_whole(decoded(raw_reader(encode(TEXT), 7), encoding, 1 << 20), 1 << 20) == TEXT


@pytest.mark.parametrize("encoding, encode", [("gzip", gzip), ("gzip, gzip", lambda d: gzip(gzip(d)))])
async def test_a_bomb_is_decoded_in_bounded_steps_and_cut_at_the_cap(encoding, encode):
    bomb = encode(bytes(64 << 20))
    next_piece = decoded(raw_reader(bomb), encoding, 8 << 20)
    got = 0
    with pytest.raises(BodyTooLarge, match=f"grew past {8 << 20} bytes"):
        while piece := await next_piece():
            assert len(piece) <= STEP
            got += len(piece)
    assert got <= 8 << 20


async def test_undecodable_bytes_and_unknown_encodings_are_decoding_errors():
    with pytest.raises(httpx.DecodingError):
        await read_whole(decoded(raw_reader(b"\x1f\x8b" + b"\xff" * 30), "gzip", 1 << 20), 1 << 20)
    with pytest.raises(httpx.DecodingError, match="compress"):
        await read_whole(decoded(raw_reader(TEXT), "compress", 1 << 20), 1 << 20)


async def test_read_whole_caps_an_identity_body_too():
    with pytest.raises(BodyTooLarge):
        await read_whole(raw_reader(TEXT), len(TEXT) - 1)
    assert await read_whole(raw_reader(TEXT), len(TEXT)) == TEXT

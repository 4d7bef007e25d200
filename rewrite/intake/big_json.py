"""Large request bodies, parsed in a worker process and never handled whole on mitmproxy's event loop.

Parsing, copying or decoding tens of MB takes the event loop for a second on a busy machine, and every other client's
stream waits that long. A body of at least BIG_BODY bytes (rewrite/intake/loopback_request.py keeps it as the pieces it
arrived in: an `Upload`) is sent to one long-lived worker process, which parses it and sends back a *skeleton*: the
parsed body with every string longer than LONG_TEXT replaced by a `LongText` stand-in. The skeleton holds what the
engine reads (the model, `stream`, the options), and the upload goes upstream as it came, piece by piece. A request that
must be rewritten (translated, adapted, another model, ...) needs the real body: the engine then parses it on the loop
after all (`parse_body`), as it does a small one. Asked (`EvidenceAsk`), the worker also reads the body's conversation
evidence (protocols/evidence.py) from the whole body, before the skeleton drops its long strings, so that reading is off
the loop too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import re
import struct
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import protocols
from protocols import sse
from protocols.evidence import Evidence
from protocols.members import changes, rewritten, with_members, with_members_in_pieces
from protocols.outline import LONG_TEXT, outline, spliced_pieces, stand_in
from protocols.sessions import DEFAULT_SESSION_SOURCES, SessionSource
from rewrite.intake.shared_body import SharedBody, reader

logger = logging.getLogger("rotator")

# A body this large is checked for integers past 64 bits by a walk of what orjson read, not a search of its text
# (sse.loads's `walk`): past a context window's worth of text, a body's bytes are mostly base64 media, whose digits
# make the search dear (0.9 ms a MiB against the walk's 0.1); a MiB of text alone walks in 0.6 ms, searches in 0.4.
WALKED_FROM = 1 << 20
# json.loads raises RecursionError on deep nesting (and so would copying or encoding such a body).
TOO_DEEP = "the request body is nested too deeply to be read"
_SEND_STEP = 1 << 20  # bytes written to the worker (or upstream) between two turns of the other tasks
_LENGTH = struct.Struct("!Q")
_SPACE = re.compile(rb"[ \t\n\r]*")
# A body this large is read without building its long strings (protocols/outline.py): from here on its screenshots
# are most of it (the benchmark's agent body: a third of a MiB of base64 every eighth turn).
OUTLINE_FROM = 1 << 20
# Where each of some top-level members' values is in a body's text, if that is known for all of them
# (protocols/outline.py: Outline.places).
Places = Callable[[Collection[str]], "dict[str, tuple[int, int]] | None"]
_ROOT = Path(__file__).resolve().parent.parent.parent  # (where the worker finds `rewrite`, installed or not)


class Upload:
    """A request body as the pieces it arrived in; sent upstream (each attempt anew) a piece at a time, with the
    other tasks' turn after each MiB, so no step holds the event loop for long. `whole`: a body held whole in memory,
    as the pieces around the members spliced into it (`rewritten_body`), written in one send with its head."""

    __slots__ = ("pieces", "size", "whole")

    def __init__(self, pieces: Sequence[bytes | memoryview], whole: bool = False) -> None:
        self.pieces = pieces
        self.whole = whole
        self.size = sum(map(len, pieces))

    def head(self, n: int) -> bytes:
        """Its first `n` bytes (only the pieces they are in are joined)."""
        out, have = [], 0
        for piece in self.pieces:
            if have >= n:
                break
            out.append(piece[: n - have])
            have += len(out[-1])
        return b"".join(out)

    async def __aiter__(self):
        since = 0
        for piece in self.pieces:
            # (a piece handed over whole, a body of many MiB, a MiB at a time: slices of it, not copies)
            parts = (piece,) if len(piece) <= _SEND_STEP else _steps(memoryview(piece))
            for part in parts:
                yield part
                since += len(part)
                if since >= _SEND_STEP:
                    since = 0
                    await asyncio.sleep(0)


def _steps(view: memoryview) -> list[memoryview]:
    return [view[at : at + _SEND_STEP] for at in range(0, len(view), _SEND_STEP)]


def added_keys(before: dict, after: dict) -> dict | None:
    """The keys `after` adds to `before`; None if it also changes or drops one of `before`'s."""
    if any(k not in after or after[k] is not v for k, v in before.items()):
        return None
    return {k: v for k, v in after.items() if k not in before}


def with_keys_in_front(upload: Upload, keys: dict | None) -> Upload | None:
    """The upload (a JSON object's text) with `keys` (none of which it has) put in front, its own bytes as they
    were; None if `keys` is None or the upload does not start as an object."""
    first = memoryview(upload.pieces[0] if upload.pieces else b"")
    brace = _SPACE.match(first).end()  # type: ignore[union-attr]
    if keys is None or first[brace : brace + 1] != b"{":
        return None
    if not keys:
        return upload
    rest = first[brace + 1 :]  # (not copied: the first piece may be the whole body)
    empty = rest[_SPACE.match(rest).end() :][:1] == b"}"  # type: ignore[union-attr]
    head = json.dumps(keys)[:-1].encode() + (b"" if empty else b",")
    return Upload([head, rest, *upload.pieces[1:]])


def rewritten_upload(upload: Upload, before: dict, after: dict, places: Places | None = None) -> Upload | None:
    """The upload with the members `after` changes or adds to `before` (its skeleton) spliced in, its other bytes
    as they were (protocols/members.py); None if `after` drops a member or the upload is no object's text. Keys
    only added go in front of its pieces; members changed are spliced in where the body's reading found them
    (`places`: protocols/outline.py), or into the pieces they are found in; else (a member far in) the pieces are
    joined: a copy, far less than parsing or writing them."""
    keys = added_keys(before, after)
    if keys is not None:
        return with_keys_in_front(upload, keys)
    changed = changes(before, after)
    if changed is None:
        return None
    found = places(changed) if places is not None else None
    pieces = spliced_pieces(upload.pieces, found, changed) if found is not None else None
    held = upload.pieces
    if pieces is None and all(isinstance(piece, bytes) for piece in held):  # (those after the members' not copied)
        pieces = with_members_in_pieces(held, changed, before)  # type: ignore[arg-type,assignment]
    if pieces is not None:
        return Upload(pieces)
    text = with_members(b"".join(upload.pieces), changed, before)
    return None if text is None else Upload([text[i : i + _SEND_STEP] for i in range(0, len(text), _SEND_STEP)])


def rewritten_body(raw: bytes, before: dict, after: dict, places: Places | None = None) -> bytes | Upload | None:
    """`rewritten` (protocols/members.py), its members spliced in where the body's reading found them (`places`),
    where it did: then as the pieces around them (an Upload), `raw` not copied (a MiB joined costs a fresh MiB's
    page faults as well as the copy)."""
    changed = changes(before, after)
    if changed == {}:  # (the body as it came: bytes still, which a signature is made over as they are)
        return raw
    found = places(changed) if places is not None and changed is not None else None
    pieces = spliced_pieces([raw], found, changed) if found is not None and changed is not None else None
    return Upload(pieces, whole=True) if pieces is not None else rewritten(raw, before, after)


def parse_body(data: bytes | memoryview) -> tuple[dict | None, str | None]:
    """A request body parsed as the engine reads it: (the JSON object or None, why it is refused or None). A body
    that is not a JSON object gives (None, None): it is forwarded untouched and the vendor answers it."""
    try:
        # (orjson's speed, json's reading: 2.5 times json's on an agent's body; a large one checked by a walk)
        body = sse.loads(data, walk=len(data) >= WALKED_FROM)
    except (ValueError, UnicodeDecodeError):
        return None, None
    except RecursionError:
        return None, TOO_DEEP
    return (body, None) if isinstance(body, dict) else (None, None)


def skeleton(value, long_text: int = LONG_TEXT):
    """`value` with every string longer than `long_text` replaced by a LongText (containers copied only where
    something was replaced); and whether anything was."""
    if isinstance(value, str):
        return (stand_in(value), True) if len(value) > long_text else (value, False)
    if isinstance(value, dict):
        out, changed = {}, False
        for k, v in value.items():
            out[k], c = skeleton(v, long_text)
            changed |= c
        return (out, True) if changed else (value, False)
    if isinstance(value, list):
        items = [skeleton(v, long_text) for v in value]
        if any(c for _, c in items):
            return [v for v, _ in items], True
        return value, False
    return value, False


@dataclass(frozen=True)
class EvidenceAsk:
    """What the worker needs to read a large body's conversation evidence: its protocol's name, the request's
    headers and path, where the client's session id is read from."""

    protocol: str
    headers: tuple[tuple[str, str], ...]
    path: str = ""
    sources: tuple[SessionSource, ...] = DEFAULT_SESSION_SOURCES


def read_evidence(ask: EvidenceAsk, body: dict, size: int | None = None) -> Evidence | None:
    """The body's evidence as its protocol's reader gives it; None for a protocol without one, or a failure (the
    body is never lost for it)."""
    try:
        reader = protocols.registered(ask.protocol).evidence
        return reader.read(ask.headers, body, ask.path, ask.sources, size) if reader is not None else None
    except Exception:  # (a bug there costs the request its evidence, not its answer)
        logger.warning("rotator: reading a large body's conversation evidence failed", exc_info=True)
        return None


class Parsed:
    """A body as it was read: the JSON object (or None: not one), why it is refused, whether it is a skeleton (its
    long strings LongText), the evidence the worker read of it (`evidence_read`: else read where it is asked for) and
    where its members are (`places`, where known)."""

    __slots__ = ("body", "evidence", "evidence_read", "places", "refusal", "skeletal")

    def __init__(self, body: dict | None, refusal: str | None, skeletal: bool, evidence: Evidence | None = None,
                 places: Places | None = None, evidence_read: bool = True) -> None:
        self.body, self.refusal, self.skeletal, self.evidence = body, refusal, skeletal, evidence
        self.places, self.evidence_read = places, evidence_read


def read_body(data: bytes, most: int | None = None) -> Parsed | None:
    """`data` read as parse_body reads it; from OUTLINE_FROM bytes without building its long strings, a skeleton,
    with its members' places (protocols/outline.py), where that reading can be made sure of. `most`: the bytes of
    text outside the long strings the reading may parse here (beyond them, None: the worker's work)."""
    if len(data) >= OUTLINE_FROM:
        try:
            read = outline(data, most)
        except (ValueError, RecursionError):  # (parse_body says what is wrong with it)
            read = None
        if read is not None:
            return Parsed(read.body, None, read.skeletal, places=read.places, evidence_read=False)
    if most is not None and len(data) > most:
        return None
    body, refusal = parse_body(data)
    return Parsed(body, refusal, False, evidence_read=False)


class Worker:
    """The worker process that parses large bodies: started ahead (`start`) or by the first one, then kept; one body
    at a time."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Future[asyncio.subprocess.Process] | None = None  # (`start`: on its way)
        self._lock: asyncio.Lock | None = None
        self._shared: SharedBody | None = None  # (made with the first worker, kept for the ones after it)

    def start(self) -> None:
        """Start the process now, without waiting for it, if it is not running: its start (its imports, about half
        a second of CPU) is then not a wait of the first large body's, which may be on its way (its headers came),
        or soon to come (a body of a MiB came)."""
        if self._proc is None or self._proc.returncode is not None:
            self._start()

    def _start(self) -> asyncio.Future[asyncio.subprocess.Process]:
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._started())
            self._starting.add_done_callback(_seen)
        return self._starting

    async def parse(self, upload: Upload, ask: EvidenceAsk | None = None) -> Parsed | None:
        """The upload's skeleton (and, asked, its conversation evidence); None when the worker could not give it
        (the caller parses on the loop)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            try:
                return await self._parse(upload, ask)
            except asyncio.CancelledError:  # (the client left mid-parse: the worker's answer is no one's now)
                self.close()
                raise
            except Exception as e:  # (a worker that died or answered nonsense: the body is parsed here instead)
                logger.warning("rotator: the body parser process failed (%s): parsing here", type(e).__name__)
                self.close()
                return None

    async def _parse(self, upload: Upload, ask: EvidenceAsk | None) -> Parsed:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            proc = await asyncio.shield(self._start())  # (a parse given up on leaves the start to go on)
        shared = self._shared
        assert proc.stdin is not None and proc.stdout is not None and shared is not None  # (both PIPE; `_started`)
        asked = pickle.dumps(ask, protocol=pickle.HIGHEST_PROTOCOL) if ask is not None else b""
        in_memory = shared.holds(upload.size)
        if in_memory:
            shared.write(upload.pieces)
        proc.stdin.write(_LENGTH.pack(len(asked)) + asked + _LENGTH.pack(upload.size) + _LENGTH.pack(in_memory))
        if not in_memory:
            async for piece in upload:
                proc.stdin.write(piece)
                await proc.stdin.drain()
        (size,) = _LENGTH.unpack(await proc.stdout.readexactly(_LENGTH.size))
        body, refusal, skeletal, evidence = pickle.loads(await proc.stdout.readexactly(size))
        return Parsed(body, refusal, skeletal, evidence)

    async def _started(self) -> asyncio.subprocess.Process:
        try:
            shared = self._shared
            if shared is None:
                shared = self._shared = SharedBody()
            fds = () if shared.fd is None else (shared.fd,)
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from rewrite.intake.big_json import serve; serve()", *map(str, fds),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=_ROOT, pass_fds=fds)
            return self._proc
        finally:
            self._starting = None

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            proc.kill()
        # Its pipes closed now, on the running loop: left to the collector (mitmproxy's `done` does not wait), they
        # were closed after the loop was, which printed "Exception ignored ... Event loop is closed" at exit.
        transport = getattr(proc, "_transport", None)
        if transport is not None:
            transport.close()

    async def aclose(self) -> None:
        if self._starting is not None:  # (a start ahead: its process is closed with the rest)
            await asyncio.wait([self._starting])
        proc = self._proc
        self.close()
        if self._shared is not None:
            self._shared.close()
            self._shared = None
        if proc is not None:
            await proc.wait()


def _seen(started: asyncio.Future) -> None:
    """A start nobody waited for failed: the next parse starts the process again (or parses on the loop)."""
    if not started.cancelled():
        started.exception()


def serve() -> None:
    """The worker's loop: a pickled EvidenceAsk (or nothing) and a body, each after its length, in (the body where
    a flag says: after it, or in the memory shared with the proxy, whose fd is the argument); a pickled (skeleton,
    refusal, skeletal, evidence) out."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    shared = reader(int(sys.argv[1])) if len(sys.argv) > 1 else None
    while head := stdin.read(_LENGTH.size):
        (asked,) = _LENGTH.unpack(head)
        ask = pickle.loads(stdin.read(asked)) if asked else None
        size, in_memory = _LENGTH.unpack(stdin.read(_LENGTH.size)) + _LENGTH.unpack(stdin.read(_LENGTH.size))
        data = memoryview(shared)[:size] if in_memory and shared is not None else stdin.read(size)
        body, refusal = parse_body(data)
        try:
            evidence = read_evidence(ask, body, size) if ask is not None and body is not None else None
            body, skeletal = skeleton(body) if body is not None else (None, False)
            out = pickle.dumps((body, refusal, skeletal, evidence), protocol=pickle.HIGHEST_PROTOCOL)
        except RecursionError:  # (just within the parser's depth: too deep to walk, as it would be to rewrite)
            out = pickle.dumps((None, TOO_DEEP, False, None))
        stdout.write(_LENGTH.pack(len(out)) + out)
        stdout.flush()


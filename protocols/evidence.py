"""Conversation evidence: what one request says about the conversation it belongs to, read without I/O.

Each protocol's reader (`protocols/<name>/evidence.py`, carried by its Registration as `evidence`) reads a
request's headers, parsed body and path into an `Evidence`; the engine decides from it which pooled key serves the
request (issue 30). The evidence, strongest first:

- *pins*: state only the account that made it accepts (a Responses `previous_response_id` or `conversation`, an
  `item_reference`, an item's `encrypted_content`, a Gemini `cachedContent`). Another key would be refused.
- *session*: the client's own conversation id, from the first of `SessionSource`s that has one (`session_of`;
  the sources, worked out once per config, are protocols/sessions.py's; `DEFAULT_SESSION_SOURCES`: Claude Code,
  Codex, opencode, Gemini CLI's Code Assist envelope).
- *links*: the lineage, read from the end: `links[0]` names the root (system and tools), then one link for each of
  the last `DEPTH` messages, oldest first. A message's link names the root, that message and the one before it. Turn
  n+1's history starts with turn n's, so turn n's deepest link is one of turn n+1's links: looked up deepest first,
  it finds the conversation of a client that sends no id (aider). A compaction shows as a session whose links no
  longer contain the bound one.
- *cache_prefix*: the link the vendor's prompt cache ends at (Anthropic: the last `cache_control` breakpoint;
  the others: the root), so sub-agents sharing a long prefix can land together.
- *cache_lifetime*: how long the request asks the vendor to keep its cache; *prompt_tokens*: the prompt's size,
  estimated (characters / 4), for "no pinning under the model's minimum cacheable prompt" (protocols.capabilities).

A pin's state may be made, read and deleted by calls of their own (Gemini's `cachedContents`): the reader says which
calls those are (`state_call`) and what state their answer says the account holds, for how long (`kept`), so the
engine binds it to the key that made it and sends those calls, and the requests that name it, there.

Why the links are cheap: a request is read on the event loop, and agents send megabytes of history every turn, so
its cost must not grow with the history: only the root and the last `DEPTH` + 1 messages are read (the prompt's size
comes from the body's bytes), and no byte of them is hashed whole. Each message contributes a *mark*: its role, and
for each part its kind, its length, a bounded head and tail of its text; a tool call and its result their call's id
(what they hold is read only when there is none); the root's tools their number and the first and last names. A
link is the CRC-32 (C speed) of the root's and the two messages' marks, beside their text length (64 bits).
scripts/bench measures it (phase `evidence`). It is no cryptographic hash, nor a chain over the whole history: two
conversations of one client with the same root whose last two messages are alike at some point share that point's
link (their later turns part again), and a client can make its own conversations collide, which gains it nothing
(identities are scoped by client and pool): a link only says which key is warm. What clients rewrite between turns
is left out so the links stay stable: cache_control markers, thinking and reasoning content (signed, and dropped by
some clients), Gemini's thought signatures, Claude Code's per-request billing header; Anthropic's string content and
a single text block, Responses' string input and a user message item, give the same marks. The model is not part of
the links.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice

from protocols.pins import PIN_ENCRYPTED_CONTENT, Kept, Pin, StateCall
from protocols.sessions import DEFAULT_SESSION_SOURCES, Headers, Session, SessionSource, SessionSources

HEAD = TAIL = 48  # characters of a long text's start and end that go into its mark
SHORT = HEAD + TAIL  # a text this long or shorter is its own mark
# Messages read from the end, each giving a link: a turn adds a few (an agent's tool round trip two, a batch of
# parallel calls more), and the turn before bound its deepest link.
DEPTH = 6
_MASK32 = 0xFFFFFFFF
_DURATION = re.compile(r"(\d{1,7})([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SESSION_MAX = 200  # characters of a client's session id kept
_LEGACY_CLAUDE_SESSION = re.compile(r"_session_([0-9A-Za-z-]{8,})$")  # user_<hash>_account_<uuid>_session_<uuid>


@dataclass(frozen=True, slots=True)
class CacheLifetime:
    """How long the request asks its vendor to keep its prompt cache: `seconds` (None: the vendor decides, or the
    cache was made apart, as Gemini's cachedContent) and what it said, in words for the flow."""

    seconds: int | None
    asked: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one request says about its conversation (the module's docstring says what each field is)."""

    pins: tuple[Pin, ...] = ()  # newest first
    session: Session | None = None
    links: tuple[int, ...] = ()  # the root, then one for each of the last DEPTH messages
    cache_prefix: int | None = None  # one of `links`, or None when nothing is cached (Anthropic without markers)
    cache_lifetime: CacheLifetime | None = None
    prompt_tokens: int = 0
    messages: int = 0  # after the root (a Responses request's reasoning items among them)

    @property
    def root(self) -> int | None:
        return self.links[0] if self.links else None


# ------------------------------------------------------------------------------------------------------------------
# Marks and the chain


def duration(text: object) -> int | None:
    """Seconds of a TTL as the vendors write it ("5m", "1h", "24h", "30m"); None for anything else."""
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    return int(match.group(1)) * _UNIT[match.group(2)] if match else None


def content_mark(text: str) -> str:
    """A short name for a long opaque string (an `encrypted_content`): its length, head and tail. The engine names
    the ones an answer carries the same way, to know which key issued them."""
    if len(text) <= HEAD + TAIL:
        return text
    return f"{len(text)}:{text[:HEAD]}:{text[-TAIL:]}"


@dataclass(slots=True)
class Scan:
    """One request's evidence as a protocol's reader finds it: the root first, then the messages `tail` says,
    oldest first (`text`, `mark` and `value` add parts to the current mark, `close` ends it: the root's, then each
    message's, which gives its link).

    A reader's hot loop may add to `parts` itself (what `text` adds, inline: `chars += len`, then the text when
    short, else its length, head and tail): a part is a string, or a JSON scalar as it is (an id, a role; `close`
    spells those, so no mark is formatted for them)."""

    pins: list[Pin] = field(default_factory=list)
    lifetime: CacheLifetime | None = None
    breakpoint: int | None = None  # the link of the last cache breakpoint seen (-1: the whole prompt)
    links: list[int] = field(default_factory=list)
    chars: int = 0  # of the texts read
    parts: list = field(default_factory=list)  # the current mark's parts
    messages: int = 0  # after the root (`tail`)
    priming: bool = False  # the message being read only opens the first link's window (`tail`)
    root: int = 0  # the root's CRC
    before: bytes = b""  # the mark of the message before
    before_chars: int = 0  # and the length of its texts
    closed: int = 0  # `chars` at the last close

    def text(self, text: str) -> None:
        n = len(text)
        self.chars += n
        self.parts.append(text if n <= SHORT else f"{n}:{text[:HEAD]}{text[-TAIL:]}")

    def mark(self, part: object) -> None:
        """Kinds and ids, as they are (a JSON scalar; a container is marked by its kind and size only)."""
        self.parts.append(part)

    def opaque(self, data: str) -> None:
        """Data that is not prompt text (base64 media, encrypted content): marked, not counted as text."""
        self.parts.append(content_mark(data))

    def value(self, value: object, depth: int = 0) -> None:
        """A JSON value of a call's arguments or result, bounded: strings by their marks, containers by their keys
        and first items, never the whole of a large one."""
        if isinstance(value, str):
            n = len(value)
            self.chars += n
            self.parts.append(value if n <= SHORT else f"{n}:{value[:HEAD]}{value[-TAIL:]}")
        elif isinstance(value, dict):
            add = self.parts.append
            add(f"{{{len(value)}")
            if depth < 3:
                for k, v in islice(value.items(), 16):
                    add(k)
                    if isinstance(v, str):  # (the usual case, inline)
                        n = len(v)
                        self.chars += n
                        add(v if n <= SHORT else f"{n}:{v[:HEAD]}{v[-TAIL:]}")
                    else:
                        self.value(v, depth + 1)
        elif isinstance(value, list):
            self.parts.append(f"[{len(value)}")
            if depth < 3:
                for v in value[:4]:
                    self.value(v, depth + 1)
        else:
            self.parts.append(value)

    def close(self) -> None:
        parts = self.parts
        try:
            data = "\x1f".join(parts).encode()
        except (TypeError, UnicodeError):  # a scalar part, a lone surrogate
            data = "\x1f".join(map(_spelled, parts)).encode("utf-8", "surrogatepass")
        parts.clear()
        chars, self.closed = self.chars - self.closed, self.chars
        if not self.links:
            self.root = zlib.crc32(data)
            self.links.append(self.root << 32 | chars & _MASK32)
        elif self.priming:
            self.priming = False
        else:
            crc = zlib.crc32(data, zlib.crc32(self.before, self.root))
            self.links.append(crc << 32 | (chars + self.before_chars) & _MASK32)
        self.before, self.before_chars = data, chars

    def here(self) -> int:
        """The link of the message being read (for a cache breakpoint in it); the root's for the one that only
        opens the first window."""
        return 0 if self.priming else len(self.links)

    def cache(self, seconds: int | None, said: str) -> None:
        """A cache lifetime the request asks for; the longest asked wins (an entry lives as long as its own)."""
        if self.lifetime is None or (seconds or 0) > (self.lifetime.seconds or 0):
            self.lifetime = CacheLifetime(seconds, said)

    def pin(self, kind: str, value: object) -> None:
        if isinstance(value, str) and value:
            self.pins.append(Pin(kind, value if kind != PIN_ENCRYPTED_CONTENT else content_mark(value)))


def _spelled(part: object) -> str:
    """A part that is no string, as a mark spells it: a scalar's repr, a container's kind and size (bounded)."""
    if isinstance(part, str):
        return part
    if isinstance(part, (dict, list)):
        return f"<{type(part).__name__} {len(part)}>"
    try:
        return repr(part)
    except ValueError:  # (an int past the conversion limit)
        return "<int>"


def tail(scan: Scan, items: list, start: int = 0, linked: Callable[[object], bool] | None = None) -> int:
    """Where the reading of `items[start:]` (the messages after the root) begins: the last DEPTH that make a link
    (`linked(item)`, when some make none), and the one before them, whose mark opens the first link's window."""
    scan.messages = len(items) - start
    if linked is None:
        first = max(start, len(items) - DEPTH - 1)
        seen = len(items) - first
    else:
        first, seen = len(items), 0
        while first > start and seen <= DEPTH:
            first -= 1
            seen += linked(items[first])
    scan.priming = seen > DEPTH
    return first


# ------------------------------------------------------------------------------------------------------------------
# The client's session id


def session_of(headers: Headers, body: object, sources: Sequence[SessionSource]) -> Session | None:
    """The client's session id from the first source that has one; None if none has. (`sources` as a config's
    `SessionSources`: nothing of them worked out again.)"""
    plan = sources if isinstance(sources, SessionSources) else SessionSources(sources)
    found = _headers(headers, plan.names) if plan.names else {}
    for said, header, name, keys, inner in plan.steps:
        if header:
            value: object = found.get(name)
        else:
            value = _path(body, keys)
            if inner:
                value = _inner_session(value)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            text = str(value).strip()
            if text:
                return Session(said, text[:SESSION_MAX])
    return None


def _headers(headers: Headers, wanted: frozenset[str]) -> dict[str, str]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, str] = {}
    for name, value in pairs:
        lower = name.lower()
        if lower in wanted and lower not in found:
            found[lower] = value
    return found


def _path(value: object, keys: tuple[str, ...]) -> object:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _inner_session(value: object) -> object:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except (ValueError, RecursionError):
                return None
        else:
            match = _LEGACY_CLAUDE_SESSION.search(text)
            return match.group(1) if match else None
    return value.get("session_id") if isinstance(value, dict) else None


class Reader:
    """A protocol's evidence reader: `read` does what every protocol shares; `scan` reads the body's own shape
    (the root, then each message, closing a link after each) into a Scan, and says the cache prefix's link."""

    def read(self, headers: Headers, body: object, path: str = "",
             sources: Sequence[SessionSource] = DEFAULT_SESSION_SOURCES, size: int | None = None) -> Evidence:
        """The request's evidence; its prompt's size estimated from the body's `size` in bytes (four a token), or
        when not given from the texts read. Never raises: a body of another shape gives what can be read of it."""
        session = session_of(headers, body, sources) if sources else None
        if not isinstance(body, dict):
            return Evidence(session=session)
        scan = Scan()
        try:
            self.scan(body, path, scan)
        except RecursionError:  # (a value nested almost as deep as the parser allows, written into a mark)
            return Evidence(session=session)
        links = tuple(scan.links)
        prefix = None
        if links and scan.breakpoint is not None:
            prefix = links[scan.breakpoint] if -len(links) <= scan.breakpoint < len(links) else links[-1]
        pins = tuple(reversed(scan.pins))
        tokens = (scan.chars if size is None else size) // 4
        return Evidence(pins, session, links, prefix, scan.lifetime, tokens, scan.messages)

    def scan(self, body: dict, path: str, scan: Scan) -> None:
        raise NotImplementedError

    def state_call(self, method: str, path: str) -> StateCall | None:
        """The call on held state a request other than a generation is (`path` without its query); None for any
        other, and for every call of a protocol that has none."""
        return None

    def kept(self, call: StateCall, asked: object, answer: object, now: float) -> Kept | None:
        """The state the answer (parsed JSON) of `call` says its account holds, and for how long (its own expiry,
        else what the request `asked`, parsed JSON, for); None when it names none (a deletion's answer)."""
        return None

    def foreign(self, body: object) -> tuple[str, ...]:
        """The marks (`content_mark`) of the state in `body` that only the account which made it accepts and that
        the request can go without (the model then works without it); none by default."""
        return ()

    def without(self, body: dict, marks: Collection[str]) -> dict | None:
        """`body` without the state `foreign` names by `marks`; None when it carries none of them."""
        return None


def tools_mark(scan: Scan, tools: object) -> None:
    """The tools of a root: how many, and the names of the first and the last (a built-in's kind). Nothing else of
    them is read, so their cost does not grow with their number: a change inside the tools alone leaves the root
    as it was."""
    if not isinstance(tools, list) or not tools:
        return
    scan.parts.append(f"{len(tools)}|{_tool_name(tools[0])}|{_tool_name(tools[-1])}")


def _tool_name(tool: object) -> str:
    if not isinstance(tool, dict):
        return ""
    name = tool.get("name")
    function = tool.get("function")
    if isinstance(function, dict):  # Chat
        name = function.get("name")
    nested = tool.get("tools", tool.get("functionDeclarations", tool.get("function_declarations")))
    if isinstance(nested, list) and nested:  # a Responses namespace, Gemini's declarations
        return f"{name}[{len(nested)}|{_tool_name(nested[0])}|{_tool_name(nested[-1])}]"
    return name if isinstance(name, str) else "|".join(map(str, tool))  # (a built-in: {"googleSearch": {}})

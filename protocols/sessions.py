"""A client's own conversation id, the *session* of a request's conversation evidence: the places clients write it
(`SessionSource`, a config's `affinity.sessions`; `DEFAULT_SESSION_SOURCES`: Claude Code, Codex, opencode, Gemini
CLI's Code Assist envelope), and what reading them takes (the header names looked for, each body path's keys),
worked out once for a config's sources (`SessionSources`). A request's session is read with the rest of its
evidence, by protocols/evidence.py (`session_of`): nothing here runs per request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Headers = Sequence[tuple[str, str]] | Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Session:
    source: str  # the source it was read from, as written in the config ("header:x-claude-code-session-id")
    value: str


@dataclass(frozen=True, slots=True)
class SessionSource:
    """One place a client's session id is read from: `header:<name>`, `body:<dotted.path>`, or
    `body:<dotted.path>#session_id` for a value that holds the id inside it (a JSON object's `session_id`, as
    Claude Code >= 2.1 writes `metadata.user_id`, or the `..._session_<id>` ending of its older form)."""

    place: str  # "header" or "body"
    name: str  # the header's name (lower case) or the body's dotted path
    inner: bool = False  # the id is inside the value (`#session_id`)

    @classmethod
    def parse(cls, text: str) -> SessionSource:
        """ValueError, saying what is wrong, for text not of those three forms."""
        place, sep, rest = text.strip().partition(":")
        name, hash_, inner = rest.partition("#")
        if not sep or place not in ("header", "body") or not name.strip() or hash_ and inner != "session_id":
            raise ValueError(f"session source {text!r}: expected header:<name>, body:<path> or "
                             "body:<path>#session_id")
        if place == "header" and hash_:
            raise ValueError(f"session source {text!r}: #session_id is read from a body path only")
        return cls(place, name.strip().lower() if place == "header" else name.strip(), bool(hash_))

    def __str__(self) -> str:
        return f"{self.place}:{self.name}" + ("#session_id" if self.inner else "")


class SessionSources(tuple[SessionSource, ...]):
    """Sources in the order they are read, with what reading them takes worked out once: the header names looked
    for, and each source's (name in the Session, header or not, header name, body path's keys, inner)."""

    names: frozenset[str]
    steps: tuple[tuple[str, bool, str, tuple[str, ...], bool], ...]

    def __new__(cls, sources: Iterable[SessionSource] = ()) -> SessionSources:
        self = super().__new__(cls, sources)
        self.names = frozenset(s.name for s in self if s.place == "header")
        self.steps = tuple((str(s), s.place == "header", s.name, tuple(s.name.split(".")), s.inner) for s in self)
        return self


DEFAULT_SESSION_SOURCES = SessionSources(SessionSource.parse(s) for s in (
    "header:x-claude-code-session-id",  # Claude Code
    "body:metadata.user_id#session_id",  # Claude Code (its JSON string; `..._session_<uuid>` before 2.1)
    "header:session_id",  # Codex (<= 0.125)
    "header:session-id",  # Codex (the thread id)
    "header:thread-id",  # Codex
    "header:x-opencode-session",  # opencode, to its own providers
    "header:x-session-affinity",  # opencode, to any other provider (also as x-session-id)
    "header:x-session-id",
    "body:request.session_id",  # Gemini CLI, in the Code Assist envelope (it sends none to the public API)
    "body:prompt_cache_key",  # Codex (its session id), opencode on OpenAI
))

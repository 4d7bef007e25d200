"""The config's settings, beside its providers (rewrite/config_providers.py): streaming deadlines, body limits,
where state is kept, how a cut answer is resumed, conversation affinity and translation; and the base every section
of the config is built on.

Part of the config file's public shape (docs/configuration.md); `Config` (rewrite/config.py) puts them together.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from protocols.sessions import DEFAULT_SESSION_SOURCES, SessionSource, SessionSources


class Strict(BaseModel):
    """A section of the config: a field it does not know is an error."""

    model_config = ConfigDict(extra="forbid")


def _switch(v: object) -> object:
    """`on`/`off` as YAML 1.1 reads them too (booleans)."""
    return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v


Switch = Annotated[Literal["on", "off"], BeforeValidator(_switch)]
# A duration in seconds: above 0 and finite (`.inf` is no limit a stalled stream could ever reach, and `.nan` none).
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class AffinityConfig(Strict):
    """Conversation affinity (rewrite/pool/affinity.py): a conversation's requests go to the pooled key that served
    it, where its prompt is cached and its stored state lives (docs/pools-and-usage.md)."""

    # on: a request's conversation evidence is read and its pool keeps it on its key; off: each request is placed by
    # the pool's strategy alone, as if it were a one-shot call, and no evidence is read.
    mode: Switch = "on"
    wait: Seconds = 2.0  # seconds a busy bound key (max_concurrent) is waited for
    # Where a client's own session id is read from, first found wins (protocols/sessions.py SessionSource).
    sessions: list[str] = [str(s) for s in DEFAULT_SESSION_SOURCES]

    @field_validator("sessions")
    @classmethod
    def _sessions(cls, v: list[str]) -> list[str]:
        for text in v:
            SessionSource.parse(text)  # (its ValueError names the source and the forms it may take)
        return v

    @property
    def sources(self) -> SessionSources:
        return SessionSources(SessionSource.parse(s) for s in self.sessions)


class PoolsConfig(Strict):
    """How the key pools treat their keys' rests (docs/pools-and-usage.md, "Re-checks of long rests")."""

    # Seconds after which a key resting longer than this (a quota that does not clear by waiting, a retry-after of
    # hours, a daily quota) gets one live request to see whether its quota came back early; 0: never.
    recheck_after: float = Field(600.0, ge=0, allow_inf_nan=False)


class PoolsOverride(Strict):
    """A provider's `pools`, over the top level's."""

    recheck_after: float | None = Field(None, ge=0, allow_inf_nan=False)


class ResumeConfig(Strict):
    """How a stream cut after its first token is continued (docs/reliability.md: Answers that survive a cut)."""

    # continue: ask the target for the rest and splice it into the client's stream; off: end it honestly.
    mode: Literal["continue", "off"] = "continue"
    max_attempts: int = Field(2, ge=0)  # continuations per answer
    deadline: Seconds = 120.0  # seconds from the cut by which a continuation's first token must come


class ResumeOverride(Strict):
    """A provider's own `resume`: only the fields given replace the top level's."""

    mode: Literal["continue", "off"] | None = None
    max_attempts: int | None = Field(None, ge=0)
    deadline: Seconds | None = None


class StreamingConfig(Strict):
    first_token_timeout: Seconds = 30.0
    first_token_retries: int = Field(3, ge=0)
    idle_timeout: Seconds = 120.0
    heartbeat_interval: Seconds = 15.0
    on_truncation: Literal["length", "error"] = "length"
    # The whole of a request that is not streamed upstream (not forced, or its model refuses streams).
    request_timeout: Seconds = 600.0


class LimitsConfig(Strict):
    """Sizes past which Rotator stops reading a body (bytes)."""

    # A client's request body; larger ones are answered 413 in the protocol's error shape without being kept.
    max_request_body: int = Field(64 << 20, ge=1)
    # An upstream body Rotator decodes (content-encoding) or holds whole; past it the body is a cut.
    max_response_body: int = Field(64 << 20, ge=1)


class StateConfig(Strict):
    # The SQLite file that keeps the pools' rests, positions and counters across restarts (rewrite/state/records.py);
    # None: $XDG_STATE_HOME/rotator/state.db, else ~/.local/state/rotator/state.db; "": kept in memory only.
    path: str | None = None
    # redis://[:password@]host[:port][/db], rediss:// (TLS), or unix:///path/to/redis.sock[?db=N] (a Redis on the
    # same host, reached by its socket's users alone): the state several workers share (docs/scaling.md); unset:
    # each process decides alone.
    redis: str | None = None

    @field_validator("redis")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v is not None:
            check_redis_url(v)
        return v


def check_redis_url(url: str) -> None:
    """A redis:// or rediss:// URL with a host, a port and a database number that parse, or a unix:// one with an
    absolute path. The error never repeats the URL: it may hold a password."""
    shape = "must be redis://[:password@]host[:port][/db], rediss://... (TLS) or unix:///path/to/redis.sock[?db=N]"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(f"{shape}; its port is not a number from 0 to 65535") from None
    if parts.scheme == "unix":
        db = parse_qs(parts.query).get("db", ["0"])
        if not parts.path.startswith("/") or parts.hostname or port or not db[-1].isdigit():
            raise ValueError(f"{shape}; a unix:// URL names an absolute path and at most a database number")
        return
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(shape)
    if port == 0 or (parts.path not in ("", "/") and not parts.path[1:].isdigit()):
        raise ValueError(f"{shape}; its port or database number is not valid")


class TranslationConfig(Strict):
    # Send the client's end-user id (Claude Code's metadata.user_id holds its device and session ids) on to a
    # target of another vendor; off: it stays with the vendor the client called.
    forward_user_id: bool = False

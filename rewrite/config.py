"""Rotator's configuration file: one YAML document, validated with pydantic.

The shape is a public contract (see docs/configuration.md). Secrets may be written as `${ENV_VAR}` references, which are
resolved at load time so a config file can be committed without its keys.
"""

from __future__ import annotations

import os
import re
import ssl
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

import protocols
from protocols.sessions import DEFAULT_SESSION_SOURCES, SessionSource
from rewrite.accounting.prices import PriceConfig
from rewrite.adapters.entries import AdapterEntry
from rewrite.pool.caps import CapConfig
from rewrite.pool.strategies import STRATEGIES
from rewrite.routing.routes import parse_target
from rewrite.upstream.egress import parse_proxy_url

DEFAULT_PATH = Path("~/.config/rotator/config.yaml")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_QUOTED = re.compile(r"""(['"])(.*?)\1""")  # what a YAML error quotes: a token, or a value (a duplicate key)
MIN_CLIENT_KEY = 16  # characters: a shorter client key could be guessed


class ConfigError(Exception):
    """An invalid config; the message is one line that names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def header_secret(value: str) -> str:
    """A secret that goes upstream in a header, as it will be sent: whitespace around it (a file's last newline)
    dropped, and nothing but printable ASCII inside, so it can neither break the request nor add a header to it.
    The error says where the bad character is, never what the secret is."""
    v = value.strip(" \t\r\n")
    if not v:
        raise ValueError("must not be empty")
    for i, ch in enumerate(v):
        if not "!" <= ch <= "~":
            raise ValueError(f"must be printable ASCII without spaces or line breaks; character {i + 1} is "
                             f"U+{ord(ch):04X}")
    return v


def not_placeholder(key: str) -> str:
    """Refuse the `...` of an example config copied as it is (`keys: [...]` is a list holding "..."): no real
    key contains an ellipsis."""
    if "..." in key or "…" in key:
        raise ValueError("is a placeholder (it contains '...'): put the real key here, or ${ENV_VAR}")
    return key


class KeyConfig(_Strict):
    """One pooled key. `organization` and `project` (OpenAI only) go upstream with this key in place of the
    client's own, which belong to another account. A cloud platform's keys say where they serve: an Azure key its
    resource's `endpoint` and `deployments` (model -> the resource's deployment name); a Vertex key is a
    `service_account` JSON key file, whose tokens Rotator mints (rewrite/providers/platform.py)."""

    service_account: str | None = None  # a Google service account's JSON key file (~ expanded): a Vertex key
    key: str  # ("" for a service account)
    organization: str | None = None
    project: str | None = None
    weight: float = Field(1.0, gt=0, allow_inf_nan=False)  # strategy weighted: its share of the picks
    tier: int = Field(1, ge=0)  # strategy priority: tier 1 before tier 2
    max_concurrent: int | None = Field(None, ge=1)  # requests in flight at once; at the cap, the key is skipped
    endpoint: str | None = None  # https://RESOURCE.openai.azure.com: the Azure resource the key belongs to
    deployments: dict[str, str] = {}  # model -> that resource's deployment of it

    @model_validator(mode="before")
    @classmethod
    def _service_account_key(cls, data: object) -> object:
        """A service account's entry has no `key` of its own."""
        if isinstance(data, dict) and "service_account" in data and "key" not in data:
            return {**data, "key": ""}
        return data

    @field_validator("key")
    @classmethod
    def _key(cls, v: str, info: ValidationInfo) -> str:
        if not v and info.data.get("service_account"):
            return v  # (a service account's entry: `_service_account_key`)
        return not_placeholder(header_secret(v))

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https://[A-Za-z0-9.-]+(:\d+)?/?$", v):
            raise ValueError("must be https://HOST (the resource's endpoint, without a path)")
        return v.rstrip("/") if v else v

    @field_validator("deployments")
    @classmethod
    def _deployments(cls, v: dict[str, str]) -> dict[str, str]:
        for model, deployment in v.items():
            if not deployment or not all("!" <= ch <= "~" and ch not in "/?#%" for ch in deployment):
                raise ValueError(f"the deployment of {model!r} must be a name without spaces, '/', '?', '#' or '%'")
        return v

    @field_validator("service_account")
    @classmethod
    def _key_file(cls, v: str | None) -> str | None:
        return str(Path(v).expanduser()) if v else v

    @model_validator(mode="after")
    def _one_key(self) -> KeyConfig:
        if self.key and self.service_account is not None:
            raise ValueError("a key is `key` or `service_account`, not both")
        return self

    @field_validator("organization", "project")
    @classmethod
    def _account_id(cls, v: str | None) -> str | None:
        if v is not None and not (v and all("!" <= ch <= "~" for ch in v)):  # sent as a header value
            raise ValueError("must be printable ASCII without spaces")
        return v


class CapabilitiesConfig(_Strict):
    """Columns of the model capability table (protocols/capabilities.py) to set; the others keep the table's."""

    sampling: list[Literal["temperature", "top_p", "top_k"]] | None = None
    thinking: Literal["none", "budget", "adaptive", "level"] | None = None
    efforts: list[Literal["minimal", "low", "medium", "high", "xhigh", "max"]] | None = None
    thinking_off: bool | None = None
    prefill: bool | None = None
    prefill_strip: bool | None = None
    prefill_marker: str | None = Field(default=None, min_length=1)
    prefill_echo: bool | None = None
    max_output_tokens: int | None = Field(default=None, gt=0)
    anthropic_version: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    mid_system: bool | None = None

    def columns(self) -> dict:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ModelConfig(_Strict):
    # Applied after the provider's own adapters (rewrite/adapters/), to this exact model name.
    adapters: list[AdapterEntry] = []
    # What the models this key matches as a glob accept (translated requests are fitted to it).
    capabilities: CapabilitiesConfig | None = None


def _switch(v: object) -> object:
    """`on`/`off` as YAML 1.1 reads them too (booleans)."""
    return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v


Switch = Annotated[Literal["on", "off"], BeforeValidator(_switch)]


class AffinityConfig(_Strict):
    """Conversation affinity (rewrite/pool/affinity.py): a conversation's requests go to the pooled key that served
    it, where its prompt is cached and its stored state lives (docs/pools-and-usage.md)."""

    # on: a request's conversation evidence is read and its pool keeps it on its key; off: each request is placed by
    # the pool's strategy alone, as if it were a one-shot call, and no evidence is read.
    mode: Switch = "on"
    wait: float = Field(2.0, gt=0, allow_inf_nan=False)  # seconds a busy bound key (max_concurrent) is waited for
    # Where a client's own session id is read from, first found wins (protocols/conversation.py SessionSource).
    sessions: list[str] = [str(s) for s in DEFAULT_SESSION_SOURCES]

    @field_validator("sessions")
    @classmethod
    def _sessions(cls, v: list[str]) -> list[str]:
        for text in v:
            SessionSource.parse(text)  # (its ValueError names the source and the forms it may take)
        return v

    @property
    def sources(self) -> tuple[SessionSource, ...]:
        return tuple(SessionSource.parse(s) for s in self.sessions)


class ResumeConfig(_Strict):
    """How a stream cut after its first token is continued (docs/reliability.md: Answers that survive a cut)."""

    # continue: ask the target for the rest and splice it into the client's stream; off: end it honestly.
    mode: Literal["continue", "off"] = "continue"
    max_attempts: int = Field(2, ge=0)  # continuations per answer
    deadline: float = Field(120.0, gt=0)  # seconds from the cut by which a continuation's first token must come


class ResumeOverride(_Strict):
    """A provider's own `resume`: only the fields given replace the top level's."""

    mode: Literal["continue", "off"] | None = None
    max_attempts: int | None = Field(None, ge=0)
    deadline: float | None = Field(None, gt=0)


class ProviderConfig(_Strict):
    base_url: str | None = None
    keys: list[KeyConfig] = []  # plain strings or KeyConfig mappings, normalised to KeyConfig
    # Only for providers that are not built in: which wire protocols they speak and which hosts to intercept.
    kind: str | None = None  # a provider family of a registered protocol (protocols/registration.py)
    hosts: list[str] = []
    # The base path the provider's own SDK uses on an intercepted host (default: the path of base_url).
    path_prefix: str | None = None
    # Non-stream generation requests go upstream as streams (folded back into JSON), so the stream deadlines and
    # retries protect them; false for an upstream that cannot stream.
    force_upstream_stream: bool = True
    # Rewrites of every request sent to this provider, then per model (rewrite/adapters/).
    adapters: list[AdapterEntry] = []
    models: dict[str, ModelConfig] = {}
    # What an openai-kind provider speaks as a route target: Chat Completions unless it says Responses.
    protocol: str | None = None  # the `choice` of one of its family's protocols
    # How the pool chooses a key: a name registered in rewrite/pool/strategies.py.
    strategy: str = "round-robin"
    # Continuing cut streams from this provider, over the top level's `resume`.
    resume: ResumeOverride | None = None
    # Conversation affinity for this provider's pool, over the top level's `affinity.mode`.
    affinity: Switch | None = None
    # Caps on each key's quota windows (rewrite/pool/caps.py), and models that share one quota at the vendor, over
    # the built-in groups (name -> globs): docs/pools-and-usage.md, "Quota windows".
    windows: list[CapConfig] = []
    quota_groups: dict[Annotated[str, Field(min_length=1)],
                       Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]] = {}
    # A cloud platform's regions (Vertex: us-east5, europe-west1, global, ...): where a request throttled in one
    # region goes next, in order (rewrite/providers/platform.py).
    regions: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")]] = []

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/") if v else v

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str | None) -> str | None:
        if v is not None and v not in protocols.registry.families():
            raise ValueError(f"unknown kind {v!r}: one of {', '.join(protocols.registry.families())}")
        return v

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, v: str | None) -> str | None:
        choices = [r.choice for r in protocols.registrations() if r.choice is not None]
        if v is not None and v not in choices:
            raise ValueError(f"unknown protocol {v!r}: one of {', '.join(choices)}")
        return v

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, v: str) -> str:
        if v not in STRATEGIES:
            raise ValueError(f"unknown strategy {v!r}: one of {', '.join(STRATEGIES)}")
        return v

    @field_validator("keys", mode="before")
    @classmethod
    def _key_mappings(cls, v):
        """A plain string in `keys` is a key without account settings."""
        return [k if isinstance(k, dict) else {"key": k} for k in v] if isinstance(v, list) else v


class StreamingConfig(_Strict):
    first_token_timeout: float = Field(30.0, gt=0)
    first_token_retries: int = Field(3, ge=0)
    idle_timeout: float = Field(120.0, gt=0)
    heartbeat_interval: float = Field(15.0, gt=0)
    on_truncation: Literal["length", "error"] = "length"
    # The whole of a request that is not streamed upstream (not forced, or its model refuses streams).
    request_timeout: float = Field(600.0, gt=0)


class LimitsConfig(_Strict):
    """Sizes past which Rotator stops reading a body (bytes)."""

    # A client's request body; larger ones are answered 413 in the protocol's error shape without being kept.
    max_request_body: int = Field(64 << 20, ge=1)
    # An upstream body Rotator decodes (content-encoding) or holds whole; past it the body is a cut.
    max_response_body: int = Field(64 << 20, ge=1)


class StateConfig(_Strict):
    # The SQLite file that keeps the pools' rests, positions and counters across restarts (rewrite/state/records.py);
    # None: $XDG_STATE_HOME/rotator/state.db, else ~/.local/state/rotator/state.db; "": kept in memory only.
    path: str | None = None
    # redis://[:password@]host[:port][/db] or rediss:// (TLS): the state several workers share (docs/scaling.md);
    # unset: each process decides alone.
    redis: str | None = None

    @field_validator("redis")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v is not None:
            check_redis_url(v)
        return v


def check_redis_url(url: str) -> None:
    """A redis:// or rediss:// URL with a host, a port and a database number that parse. The error never repeats
    the URL: it may hold a password."""
    shape = "must be redis://[:password@]host[:port][/db] or rediss://... (TLS)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(f"{shape}; its port is not a number from 0 to 65535") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(shape)
    if port == 0 or (parts.path not in ("", "/") and not parts.path[1:].isdigit()):
        raise ValueError(f"{shape}; its port or database number is not valid")


class ClientConfig(_Strict):
    """A client allowed to use the key pools: it sends `key` as its API key."""

    name: str = Field(min_length=1)
    key: str

    @field_validator("key")
    @classmethod
    def _sendable(cls, v: str) -> str:
        if not all("!" <= ch <= "~" for ch in v):  # what a tool can send in a header, and nothing else
            raise ValueError("must be printable ASCII without spaces")
        v = not_placeholder(v)
        if len(v) < MIN_CLIENT_KEY:  # (its length only, never the key)
            raise ValueError(f"must be at least {MIN_CLIENT_KEY} characters long (it has {len(v)}): a shorter "
                             "key can be guessed; e.g. `openssl rand -hex 16`")
        return v


def _target(text: str) -> str:
    parse_target(text)
    return text


class RouteConfig(_Strict):
    models: list[str] = []  # globs on the model the client asked for (none: any model)
    # The provider the client called (a subscription login's requests follow only a route from its provider).
    source: str | None = Field(None, alias="from", min_length=1)
    targets: list[Annotated[str, AfterValidator(_target)]] = Field(min_length=1)  # provider or provider/model

    @model_validator(mode="after")
    def _matches_something(self) -> RouteConfig:
        if not self.models and self.source is None:
            raise ValueError("a route needs `models` (globs on the model asked), `from` (the provider called), or both")
        return self


class TranslationConfig(_Strict):
    # Send the client's end-user id (Claude Code's metadata.user_id holds its device and session ids) on to a
    # target of another vendor; off: it stays with the vendor the client called.
    forward_user_id: bool = False


class Config(_Strict):
    providers: dict[str, ProviderConfig] = {}
    # Which providers serve a model, in order (rewrite/routing/routes.py); targets are checked against the providers
    # when they are built (rewrite/providers).
    routes: list[RouteConfig] = []
    streaming: StreamingConfig = StreamingConfig()
    limits: LimitsConfig = LimitsConfig()
    translation: TranslationConfig = TranslationConfig()
    resume: ResumeConfig = ResumeConfig()
    affinity: AffinityConfig = AffinityConfig()
    # When set, only these clients are served from the key pools (see rewrite/intake/clients.py).
    clients: list[ClientConfig] = []
    # Serve requests from web browsers (an Origin or Sec-Fetch-* header) from the pools without a client key:
    # off, so a web page cannot spend the pools through a browser that uses Rotator (addons/access.py).
    allow_browsers: bool = False
    # Responses API WebSocket upgrades: answered 426 so the client falls back to HTTPS POST, or passed through.
    websocket: Literal["downgrade", "pass"] = "downgrade"
    # The HTTP proxy Rotator's own upstream calls go through (rewrite/upstream/egress.py); unset: mitmproxy's
    # `--mode upstream:URL` if given, else straight to the vendors.
    upstream_proxy: str | None = None
    # A PEM file of CA certificates trusted for upstream TLS besides certifi's (e.g. a TLS-inspecting proxy's).
    upstream_ca: str | None = None
    state: StateConfig = StateConfig()
    # USD per million tokens by model glob, over the built-in prices from genai-prices (rewrite/accounting/prices.py).
    prices: dict[str, PriceConfig] = {}

    def resume_for(self, provider: str) -> ResumeConfig:
        """The `resume` settings for cut streams from `provider`: the top level's with the provider's overrides."""
        own = self.providers.get(provider)
        if own is None or own.resume is None:
            return self.resume
        return self.resume.model_copy(update={k: v for k, v in own.resume.model_dump().items() if v is not None})

    def affinity_on(self, provider: str) -> bool:
        """Whether `provider`'s pool keeps conversations on their keys: its own `affinity`, else the top level's."""
        own = self.providers.get(provider)
        return (own.affinity if own is not None and own.affinity is not None else self.affinity.mode) == "on"

    @field_validator("upstream_proxy")
    @classmethod
    def _egress_proxy(cls, v: str | None) -> str | None:
        if v is not None:
            parse_proxy_url(v)  # (its errors never repeat the URL: it may hold a password)
        return v

    @field_validator("upstream_ca")
    @classmethod
    def _ca_file(cls, v: str | None) -> str | None:
        if v is None:
            return v
        path = str(Path(v).expanduser())
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
        except ssl.SSLError:
            raise ValueError(f"{path} holds no PEM certificate") from None
        except OSError as e:
            raise ValueError(f"cannot read {path}: {e.strerror}") from None
        return path

    @field_validator("clients")
    @classmethod
    def _distinct_clients(cls, v: list[ClientConfig]) -> list[ClientConfig]:
        for i, c in enumerate(v):
            for earlier in v[:i]:
                if c.name == earlier.name:
                    raise ValueError(f"client name {c.name!r} is used twice")
                if c.key == earlier.key:  # (never the key itself in a message)
                    raise ValueError(f"clients {earlier.name!r} and {c.name!r} have the same key")
        return v


def _resolve_env(node, where: str, missing: dict[str, str]):
    """`node` with its ${ENV_VAR} references replaced; each variable that is not set goes into `missing`, with the
    first field that names it."""
    if isinstance(node, dict):
        return {k: _resolve_env(v, f"{where}.{k}" if where else str(k), missing) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_env(v, f"{where}.{i}", missing) for i, v in enumerate(node)]
    if isinstance(node, str):

        def sub(m: re.Match) -> str:
            if m.group(1) not in os.environ:
                missing.setdefault(m.group(1), where)
                return ""
            return os.environ[m.group(1)]

        return _ENV_REF.sub(sub, node)
    return node


def _with_env(doc: dict) -> dict:
    """The document with its ${ENV_VAR} references resolved; every variable that is not set, named in one line
    (names and fields only: a value is never shown)."""
    missing: dict[str, str] = {}
    doc = _resolve_env(doc, "", missing)
    if len(missing) == 1:
        [(name, where)] = missing.items()
        raise ConfigError(f"{where}: environment variable {name} is not set")
    if missing:
        named = ", ".join(f"{name} ({where})" for name, where in missing.items())
        raise ConfigError(f"{len(missing)} environment variables are not set: {named}")
    return doc


def _yaml_problem(e: Exception) -> str:
    """What is wrong with the YAML and where, without the document's own text: its lines may hold keys."""
    problem, mark = getattr(e, "problem", None), getattr(e, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    text = str(e) if problem is None else problem + where

    def elide(m: re.Match) -> str:  # keep a short token and a token kind (<scalar>), not a value
        return m[0] if len(m[2]) < 4 or re.fullmatch(r"<[a-z ]+>", m[2]) else f"{m[1]}…{m[1]}"

    return _QUOTED.sub(elide, " ".join(text.split()))


def parse(text: str, source: str = "config") -> Config:
    from ruamel.yaml import YAML, YAMLError  # mitmproxy's own YAML library: no extra dependency

    try:
        doc = YAML(typ="safe").load(text)
    except YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(e)}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        return Config.model_validate(_with_env(doc))
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "config"
        raise ConfigError(f"{field}: {err['msg']}") from None


def source(path: str | None) -> Path | None:
    """The file `load(path)` reads: `path`, else the default location if it exists; None: the embedded defaults."""
    if path:
        return Path(path).expanduser()
    default = DEFAULT_PATH.expanduser()
    return default if default.exists() else None


def load(path: str | None) -> Config:
    """The config at `path`; else the one at the default location if it exists; else the embedded defaults."""
    p = source(path)
    if p is None:
        return Config()
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read it: {e.strerror}") from None
    return parse(text, str(p))

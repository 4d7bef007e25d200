"""Rotator's configuration file: one YAML document, validated with pydantic.

The shape is a public contract (see docs/configuration.md). Secrets may be written as `${ENV_VAR}` references, which are
resolved at load time so a config file can be committed without its keys. A provider's section is in
rewrite/config_providers.py, the other settings' sections in rewrite/config_settings.py; here, the whole document, its
clients and routes, and reading it.
"""

from __future__ import annotations

import os
import re
import ssl
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from rewrite.accounting.client_rules import BudgetConfig, LimitConfig
from rewrite.accounting.prices import PriceConfig
from rewrite.config_providers import ProviderConfig, not_placeholder
from rewrite.config_settings import (
    AffinityConfig,
    LimitsConfig,
    PoolsConfig,
    ResumeConfig,
    StateConfig,
    StreamingConfig,
    Strict,
    TranslationConfig,
)
from rewrite.policy.hedging import HedgingConfig, merged
from rewrite.routing.routes import parse_target
from rewrite.upstream.egress import parse_proxy_url

DEFAULT_PATH = Path("~/.config/rotator/config.yaml")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_QUOTED = re.compile(r"""(['"])(.*?)\1""")  # what a YAML error quotes: a token, or a value (a duplicate key)
MIN_CLIENT_KEY = 16  # characters: a shorter client key could be guessed


class ConfigError(Exception):
    """An invalid config; the message is one line that names the field."""


class ClientConfig(Strict):
    """A client allowed to use the key pools: it sends `key` as its API key, or NAME:KEY as its proxy credentials;
    what it may spend (rewrite/accounting/client_rules.py)."""

    name: str = Field(min_length=1)
    key: str
    budget: BudgetConfig | None = None
    limits: list[LimitConfig] = []
    models: list[Annotated[str, Field(min_length=1)]] = []  # globs on the model it asks for; none: any

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


class RouteConfig(Strict):
    models: list[str] = []  # globs on the model the client asked for (none: any model)
    # The provider the client called (a subscription login's requests follow only a route from its provider).
    source: str | None = Field(None, alias="from", min_length=1)
    targets: list[Annotated[str, AfterValidator(_target)]] = Field(min_length=1)  # provider or provider/model

    @model_validator(mode="after")
    def _matches_something(self) -> RouteConfig:
        if not self.models and self.source is None:
            raise ValueError("a route needs `models` (globs on the model asked), `from` (the provider called), or both")
        return self


class Config(Strict):
    providers: dict[str, ProviderConfig] = {}
    # Which providers serve a model, in order (rewrite/routing/routes.py); targets are checked against the providers
    # when they are built (rewrite/providers).
    routes: list[RouteConfig] = []
    streaming: StreamingConfig = StreamingConfig()
    limits: LimitsConfig = LimitsConfig()
    translation: TranslationConfig = TranslationConfig()
    resume: ResumeConfig = ResumeConfig()
    affinity: AffinityConfig = AffinityConfig()
    hedging: HedgingConfig = HedgingConfig()
    pools: PoolsConfig = PoolsConfig()
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

    def hedging_for(self, provider: str) -> tuple[HedgingConfig, bool]:
        """The `hedging` settings for `provider` (the top level's with its own over them), and whether its own say
        `mode` (a subscription login is hedged only when its provider's own `hedging` turns it on)."""
        own = self.providers.get(provider)
        ours = own.hedging if own is not None else None
        return merged(self.hedging, ours), ours is not None and ours.mode is not None

    def recheck_after(self, provider: str) -> float:
        """Seconds after which `provider`'s long rests are re-checked (0: never): its own `pools`, else the top
        level's."""
        own = self.providers.get(provider)
        ours = own.pools.recheck_after if own is not None and own.pools is not None else None
        return self.pools.recheck_after if ours is None else ours

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
    except ValueError:  # (ruamel takes a plain `._` for a float and then fails to convert it; the value may be a key)
        raise ConfigError(f"{source}: not valid YAML: a plain value that reads as a number is not one (quote it)") \
            from None
    except RecursionError:  # (nested deeper than the parser goes)
        raise ConfigError(f"{source}: nested too deeply") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        return Config.model_validate(_with_env(doc))
    except RecursionError:  # (an alias inside the node it names: a tree without an end)
        raise ConfigError(f"{source}: nested too deeply (an alias inside what it names?)") from None
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
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read it: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: cannot read it: not UTF-8 text (byte {e.start})") from None
    return parse(text, str(p))

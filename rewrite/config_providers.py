"""A provider's section of the config: its keys (and the checks a secret sent upstream must pass), its models'
adapters and capabilities, its pool's strategy, windows and quota groups, its own resume and affinity switches.

Part of the config file's public shape (docs/configuration.md); `Config` (rewrite/config.py) holds one per provider.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator

import protocols
from rewrite.adapters.entries import AdapterEntry
from rewrite.config_settings import PoolsOverride, ResumeOverride, Strict, Switch
from rewrite.policy.hedging import HedgingOverride
from rewrite.pool.caps import CapConfig
from rewrite.pool.strategies import STRATEGIES

AWS_REGION = r"^[a-z]{2}(-[a-z]+)+-\d+$"  # an AWS region (`us-east-1`, `us-gov-west-1`)


def url_problem(url: str) -> None:
    """Refuse a base URL that no request could be sent to (every call would fail): a space or control character in
    it, a host that is not one ("[::1" unclosed), a port that is no number or outside 1-65535."""
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ValueError("must be a URL without spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("must be a URL with a valid host and port (1-65535)") from None
    if not parts.hostname or port == 0:
        raise ValueError("must be a URL with a valid host and port (1-65535)")


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


class KeyConfig(Strict):
    """One pooled key. `organization` and `project` (OpenAI only) go upstream with this key in place of the
    client's own, which belong to another account. A cloud platform's keys say where they serve and are its own
    shapes (rewrite/providers/platform.py): an Azure key its resource's `endpoint` and `deployments` (model -> the
    resource's deployment name); a Vertex key is a `service_account` JSON key file, whose tokens Rotator mints; a
    Bedrock key is AWS keys (`access_key_id`, `secret_access_key`, an optional `session_token`) or a `bearer` API key
    in place of `key`, each in its own `region` or in every region of the provider's `regions`."""

    service_account: str | None = None  # a Google service account's JSON key file (~ expanded): a Vertex key
    key: str  # ("" for a service account)
    access_key_id: str | None = None
    secret_access_key: str | None = Field(None, repr=False)
    session_token: str | None = Field(None, repr=False)
    bearer: str | None = Field(None, repr=False)
    region: str | None = Field(None, pattern=AWS_REGION)
    organization: str | None = None
    project: str | None = None
    weight: float = Field(1.0, gt=0, allow_inf_nan=False)  # strategy weighted: its share of the picks
    tier: int = Field(1, ge=0)  # strategy priority: tier 1 before tier 2
    max_concurrent: int | None = Field(None, ge=1)  # requests in flight at once; at the cap, the key is skipped
    endpoint: str | None = None  # https://RESOURCE.openai.azure.com: the Azure resource the key belongs to
    deployments: dict[str, str] = {}  # model -> that resource's deployment of it

    @model_validator(mode="before")
    @classmethod
    def _one_credential(cls, data: object) -> object:
        """A key is one credential, which the pool names: a cloud's (`bearer`, `access_key_id`) is its `key`; a
        service account's entry has no `key` of its own (its key's id names it: rewrite/providers/vertex.py)."""
        if not isinstance(data, dict):
            return data
        given = [n for n in ("key", "bearer", "access_key_id", "service_account") if n in data]
        if len(given) > 1:
            raise ValueError(f"a key is one credential, not both `{given[0]}` and `{given[1]}`")
        if given and given[0] != "key":
            return {**data, "key": "" if given[0] == "service_account" else data[given[0]]}
        return data

    @field_validator("service_account")
    @classmethod
    def _key_file(cls, v: str | None) -> str | None:
        return str(Path(v).expanduser()) if v else v

    @field_validator("key")
    @classmethod
    def _key(cls, v: str, info: ValidationInfo) -> str:
        if not v and info.data.get("service_account"):
            return v  # (a service account's entry: `_one_credential`)
        return not_placeholder(header_secret(v))

    @field_validator("access_key_id", "secret_access_key", "session_token", "bearer")
    @classmethod
    def _secret(cls, v: str | None) -> str | None:
        return not_placeholder(header_secret(v)) if v is not None else v

    @model_validator(mode="after")
    def _signing_pair(self) -> KeyConfig:
        if self.access_key_id and not self.secret_access_key:
            raise ValueError("secret_access_key: required with access_key_id")
        if not self.access_key_id and (self.secret_access_key or self.session_token):
            raise ValueError("access_key_id: required with secret_access_key and session_token")
        return self

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

    @field_validator("organization", "project")
    @classmethod
    def _account_id(cls, v: str | None) -> str | None:
        if v is not None and not (v and all("!" <= ch <= "~" for ch in v)):  # sent as a header value
            raise ValueError("must be printable ASCII without spaces")
        return v


class CapabilitiesConfig(Strict):
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


class ModelConfig(Strict):
    # Applied after the provider's own adapters (rewrite/adapters/), to this exact model name.
    adapters: list[AdapterEntry] = []
    # What the models this key matches as a glob accept (translated requests are fitted to it).
    capabilities: CapabilitiesConfig | None = None


class ProviderConfig(Strict):
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
    # Its pool's re-checks of long rests, over the top level's `pools`.
    pools: PoolsOverride | None = None
    # Continuing cut streams from this provider, over the top level's `resume`.
    resume: ResumeOverride | None = None
    # Conversation affinity for this provider's pool, over the top level's `affinity.mode`.
    affinity: Switch | None = None
    # Hedged first tokens for this provider, over the top level's `hedging` (rewrite/policy/hedging.py).
    hedging: HedgingOverride | None = None
    # Caps on each key's quota windows (rewrite/pool/caps.py), and models that share one quota at the vendor, over
    # the built-in groups (name -> globs): docs/pools-and-usage.md, "Quota windows".
    windows: list[CapConfig] = []
    quota_groups: dict[Annotated[str, Field(min_length=1)],
                       Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]] = {}
    # A cloud platform's regions, in order: Bedrock's (AWS regions: us-east-1, ...) each pooled key is sent to,
    # each key in each region apart (throttling is per account and region; empty: the region the client calls);
    # Vertex's (us-east5, europe-west1, global, ...) where a request throttled in one region goes next
    # (rewrite/providers/platform.py).
    regions: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")]] = []

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http:// or https:// URL")
        if v is not None:
            url_problem(v)
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

"""Providers: where a vendor's traffic is intercepted and where it is sent.

A built-in provider is one module in this package with one `register(...)` line. Providers that are not built in
(OpenRouter, Groq, a local vLLM, ...) are declared in the config with their `kind`, `hosts` and `base_url`; one
without `hosts` is only a route target (nothing is intercepted for it). A built-in provider whose spec carries a
`Login` (rewrite/providers/login.py) serves its clients' own subscription logins: it has no pool. One whose spec
carries a `Platform` (rewrite/providers/platform.py) is a cloud platform: its hosts serve several vendors'
protocols, and its keys are the platform's own. Both are a `Wire` (rewrite/providers/wire.py): their hosts speak
several protocol families, the protocol following the path. A platform whose requests are signed (AWS SigV4:
Bedrock's) is a `SigningPlatform` (rewrite/providers/signer.py), which holds its `Signer`.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import protocols
from protocols.envelope import Envelope
from protocols.vendor_errors import ErrorReader
from protocols.windows import WindowReader
from rewrite.adapters import ProviderAdapters
from rewrite.adapters.chain import EMPTY_CHAIN, NO_ADAPTERS, AdapterChain
from rewrite.config import Config, ConfigError
from rewrite.config_providers import KeyConfig, ProviderConfig
from rewrite.pool import KeyPool
from rewrite.pool.logins import LoginBook
from rewrite.pool.signers import SignerBook
from rewrite.pool.windows import Quotas
from rewrite.providers.credentials import CredentialStyle
from rewrite.providers.login import Login
from rewrite.providers.platform import PLATFORM_KEY_FIELDS, REGIONS, Configured, Platform
from rewrite.providers.signer import signer_of
from rewrite.providers.wire import Wire
from rewrite.routing.capabilities import ModelTable
from rewrite.routing.routes import check_targets


@dataclass(frozen=True)
class ProviderSpec:
    """A built-in provider's defaults."""

    name: str
    family: str  # the provider family of the protocols it speaks (protocols/registration.py)
    hosts: tuple[str, ...]  # exact names, or globs (`api.*.githubcopilot.com`)
    base_url: str  # "" for a login or a platform whose upstream is the host its client called
    path_prefix: str  # the base path of the vendor's own SDK on its host
    login: Login | None = None  # a subscription login's (rewrite/providers/login.py)
    platform: Platform | None = None  # a cloud platform's (rewrite/providers/platform.py)

    @property
    def wire(self) -> Wire | None:
        return self.login or self.platform


BUILTIN: dict[str, ProviderSpec] = {}


def as_it_came(status: int, body: bytes) -> bytes:
    return body


def register(spec: ProviderSpec) -> None:
    BUILTIN[spec.name] = spec


@dataclass
class Provider:
    """A provider as configured: what Rotator intercepts, where it sends it, with which keys."""

    name: str
    family: str
    hosts: tuple[str, ...]
    base_url: str
    path_prefix: str
    pool: KeyPool | None
    force_upstream_stream: bool = True
    # Per pooled key: the headers of its own account (OpenAI organization/project) sent with it.
    accounts: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # The request rewrites configured for it and its models (rewrite/adapters/).
    adapters: ProviderAdapters = NO_ADAPTERS
    # The API it speaks as a route target, for a family of several protocols (openai: "chat" or "responses", the
    # registrations' `choice`); None for a built-in provider, which speaks the client's own, and for the families of
    # one protocol.
    protocol: str | None = None
    # What its models accept (the built-in table with the config's overrides); built from `family` if not given.
    models: ModelTable | None = None
    # A subscription login's provider: what makes it one, and the logins it served (never a pool).
    login: Login | None = None
    logins: LoginBook | None = None
    # A cloud platform's provider (rewrite/providers/platform.py): what each pooled key carries besides (its place,
    # its account, its AWS credential and region), and its regions; for one that signs its requests, the AWS
    # credentials its clients signed their own requests with (no pool: rewrite/plugins/payers/signed.py).
    platform: Platform | None = None
    held: dict[str, object] = field(default_factory=dict)
    regions: tuple[str, ...] = ()
    signers: SignerBook | None = None
    # What its wire says beyond its protocols (a login's, a platform's: rewrite/providers/wire.py): the envelope its
    # clients wrap calls in, the stream events that report windows, its error answers as its client is given them.
    envelope: Envelope | None = None
    window_events: frozenset[str] = frozenset()
    client_error: Callable[[int, bytes], bytes] = as_it_came

    def __post_init__(self) -> None:
        if self.models is None:
            self.models = ModelTable(self.name, self.family)
        if signer_of(self.platform) is not None and self.signers is None:
            self.signers = SignerBook(self.name)

    @property
    def wire(self) -> Wire | None:
        """What its hosts speak, when one host speaks several families (a login's, a platform's)."""
        return self.login or self.platform

    @property
    def serves_other_clients(self) -> bool:
        """Whether another provider's client's call may be sent to it (as a route's target): not when its wire claims
        requests by the credential they carry (a login's: its clients' own, which another's call does not carry)."""
        wire = self.wire
        return wire is None or wire.claims is None

    @property
    def guest_envelope(self) -> Envelope | None:
        """The envelope another provider's client's call is put in for it: its wire's, when its answers are the plain
        protocol's (a cloud platform's: Vertex's, Azure's); None when its calls are its protocols' own, or its
        envelope serves its own clients only (a login's, Bedrock's InvokeModel)."""
        envelope = self.envelope
        return envelope if envelope is not None and envelope.for_others else None

    @property
    def guest_families(self) -> tuple[str, ...]:
        """The families another provider's client's call is sent to it in as it is (in its guest envelope: a cloud
        platform's); else its own family's protocol is spoken (rewrite/routing/targets.py)."""
        return self.families if self.guest_envelope is not None else (self.family,)

    @property
    def families(self) -> tuple[str, ...]:
        """The protocol families its calls speak (a login's or a platform's host may speak several, the protocol
        following the path)."""
        wire = self.wire
        return wire.families if wire is not None else (self.family,)

    @property
    def credential(self) -> CredentialStyle:
        wire = self.wire
        return wire.credential if wire is not None else protocols.registry.credential(self.family)

    def errors(self, protocol: str | None) -> ErrorReader:
        """What its answers' errors mean: its protocol's reader, with its wire's own dialects."""
        return _readers(self.family, protocol, self.wire)[0]

    def windows(self, protocol: str | None) -> WindowReader:
        """The usage windows its answers report: its protocol's reader, with its wire's own dialects."""
        return _readers(self.family, protocol, self.wire)[1]

    def serves_host(self, host: str) -> bool:
        host = host.lower()
        names, globs = _host_names(self.hosts)
        return host in names or any(fnmatch.fnmatchcase(host, h) for h in globs)

    def authorize(self, headers: list[tuple[str, str]], query: str, key: str) -> tuple[list[tuple[str, str]], str]:
        """Headers and query with the pooled `key` and its account's headers in place of the client's."""
        return self.credential.apply(headers, query, key, self.accounts.get(key, ()))

    def origin(self, host: str) -> str:
        """Its base URL; for a login sent where its client called, the host called (under its path prefix)."""
        return self.base_url or f"https://{host}{self.path_prefix}"

    def upstream_url(self, path: str, host: str = "") -> str:
        """Map a path the client sent to the vendor host (`host`) onto this provider's base URL."""
        prefix, base = self.path_prefix, self.origin(host)
        if prefix and (path == prefix or path.startswith(prefix + "/") or path.startswith(prefix + "?")):
            return base + path[len(prefix) :]
        if not prefix:
            return base + path
        parts = urlsplit(base)
        return f"{parts.scheme}://{parts.netloc}{path}"

    def guest_url(self, path: str, called_prefix: str) -> str:
        """Map a path a client sent to another vendor (`called_prefix`: the base of that vendor's SDK) onto this
        provider's base URL: a route's target other than the provider called."""
        return self.base_url + guest_path(path, called_prefix)

    def adapters_for(self, model: str) -> AdapterChain:
        """The adapters a generation call for `model` goes through (rewrite/adapters/): none, without looking them up,
        when its config names none (`ProviderAdapters.configured`, decided once per config)."""
        return self.adapters.chain_for(model) if self.adapters.configured else EMPTY_CHAIN


def guest_path(path: str, called_prefix: str) -> str:
    """A path a client sent, relative to the base of the SDK of the vendor it called (`called_prefix`)."""
    return path[len(called_prefix):] if called_prefix and path.startswith(called_prefix + "/") else path


@functools.lru_cache(maxsize=64)
def _readers(family: str, protocol: str | None, wire: Wire | None) -> tuple[ErrorReader, WindowReader]:
    errors, windows = protocols.registry.errors(family, protocol), protocols.registry.windows(family, protocol)
    if wire is None:
        return errors, windows
    return errors.with_dialects(*wire.errors), windows.with_dialects(*wire.windows)


def _quotas(family: str, pc: ProviderConfig) -> Quotas:
    """A pool's quota groups (its protocol's vendor's, with the config's over them) and its caps."""
    groups = protocols.registry.windows(family, pc.protocol).groups
    return Quotas.of(groups, pc.quota_groups, pc.windows)


def _dialect(name: str, spec: ProviderSpec | None, pc: ProviderConfig, configured: Configured | None) -> dict:
    """What a provider's wire says beyond its protocols (a login's, a platform's), its config checked by it."""
    wire = spec.wire if spec is not None else None
    return wire.fields(name, pc, configured) if wire is not None else {}


def is_glob(host: str) -> bool:
    return any(c in host for c in "*?[")


@functools.lru_cache(maxsize=256)
def _host_names(hosts: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """A provider's hosts as (exact names, globs): asked of a few providers for every request."""
    return frozenset(h for h in hosts if not is_glob(h)), tuple(h for h in hosts if is_glob(h))


def build(config: Config) -> list[Provider]:
    """Every provider in effect: the built-ins (overridden by the config) plus the ones the config declares."""
    merged: dict[str, ProviderConfig] = {name: ProviderConfig() for name in BUILTIN}
    merged.update(config.providers)
    providers = []
    for name, pc in merged.items():
        spec = BUILTIN.get(name)
        family: str
        base_url: str
        if spec is None:
            if pc.kind is None:
                raise ConfigError(f"providers.{name}.kind: required for a provider that is not built in")
            if not pc.base_url:
                raise ConfigError(f"providers.{name}.base_url: required for a provider that is not built in")
            family, base_url = pc.kind, pc.base_url
        elif pc.kind not in (None, spec.family):
            raise ConfigError(f"providers.{name}.kind: the built-in {name} provider speaks {spec.family}")
        else:
            family, base_url = spec.family, pc.base_url or spec.base_url
        choices = [r.choice for r in protocols.registry.family_protocols(family) if r.choice is not None]
        if pc.protocol is not None and pc.protocol not in choices:
            raise ConfigError(f"providers.{name}.protocol: {family}-kind providers have "
                              + (f"the choice of {', '.join(choices)}" if choices else "no choice of protocol"))
        if pc.path_prefix is not None:
            prefix = pc.path_prefix.rstrip("/")
        elif spec is not None:
            prefix = spec.path_prefix
        else:
            prefix = urlsplit(base_url).path.rstrip("/")
        configured = _platform(name, spec.platform if spec is not None else None, pc)
        dialect = _dialect(name, spec, pc, configured)
        keys = configured.keys if configured is not None else pc.keys
        providers.append(
            Provider(
                name=name,
                family=family,
                hosts=tuple(h.lower() for h in (pc.hosts or (spec.hosts if spec else ()))),
                base_url=base_url,
                path_prefix=prefix,
                pool=KeyPool(keys, pc.strategy, name, quotas=_quotas(family, pc),
                             recheck_after=config.recheck_after(name)) if keys else None,
                force_upstream_stream=pc.force_upstream_stream,
                accounts=_accounts(name, family, keys),
                adapters=ProviderAdapters(pc.adapters, {m: mc.adapters for m, mc in pc.models.items()}),
                protocol=pc.protocol or (choices[0] if choices and spec is None else None),
                models=ModelTable(name, family, {m: mc.capabilities.columns() for m, mc in pc.models.items()
                                                 if mc.capabilities is not None},
                                  spec.wire.families if spec is not None and spec.wire is not None else ()),
                **dialect,
            )
        )
    for p in providers:
        if p.logins is not None:
            p.logins.recheck_after = config.recheck_after(p.name)
    # (host, whether it takes other providers' clients) -> provider: a wire that claims its requests by the credential
    # they carry (a login's) may share its host with one that takes any request there (an API-key provider).
    # Two logins may share a host when one tells its own requests from the other's (`Wire.owns`).
    seen: dict[tuple[str, bool], str] = {}
    by_name = {p.name: p for p in providers}
    for p in providers:
        for h in p.hosts:
            owner = seen.get((h, p.serves_other_clients))
            if owner is not None and owner != p.name and not _tell_apart(p, by_name[owner]):
                raise ConfigError(f"providers.{p.name}.hosts: {h} is already intercepted for {owner}")
            seen.setdefault((h, p.serves_other_clients), p.name)
    hosts_only = {p.name for p in providers if not p.serves_other_clients}
    if problem := check_targets(config.routes, {p.name for p in providers}, hosts_only):
        raise ConfigError(problem)
    return providers


def _tell_apart(a: Provider, b: Provider) -> bool:
    """Whether two providers on one host have wires one of which tells its own requests from the other's."""
    wa, wb = a.wire, b.wire
    return wa is not None and wb is not None and (wa.owns is None) != (wb.owns is None)


# The account fields a key may carry (each family's credential style says which it takes, and in which header).
ACCOUNT_FIELDS = ("organization", "project")


def _platform(name: str, platform: Platform | None, pc: ProviderConfig) -> Configured | None:
    """A platform's provider as its config makes it (its keys read by the platform); None for another provider.
    A key field only another platform takes, or `regions` on a provider that is no platform, stops start-up."""
    for i, k in enumerate(pc.keys):
        field_ = next((f for f in PLATFORM_KEY_FIELDS if getattr(k, f) and (platform is None or f not in
                                                                           platform.takes)), None)
        if field_ is not None:
            what = f"{name}'s keys have none" if platform is not None else "only the keys of a cloud platform have one"
            raise ConfigError(f"providers.{name}.keys.{i}.{field_}: {what} ({_taking(field_)})")
    if platform is not None:
        return platform.configure(name, pc)
    if pc.regions:
        raise ConfigError(f"providers.{name}.regions: only a cloud platform's provider has regions "
                          f"({_taking(REGIONS)})")
    return None


def _taking(field_: str) -> str:
    """The platforms whose config takes `field_`, in words."""
    takers = [n for n, spec in BUILTIN.items() if spec.platform is not None and field_ in spec.platform.takes]
    return f"{' and '.join(takers)} {'takes' if len(takers) == 1 else 'take'} it"


def _accounts(provider: str, family: str, keys: list[KeyConfig]) -> dict[str, tuple[tuple[str, str], ...]]:
    takes = dict(protocols.registry.credential(family).account_fields)
    accounts = {}
    for i, k in enumerate(keys):
        if (refused := next((f for f in ACCOUNT_FIELDS if getattr(k, f) is not None and f not in takes), None)):
            kinds = [c for c in protocols.registry.families() if refused in dict(protocols.registry.credential(c)
                                                                                 .account_fields)]
            raise ConfigError(f"providers.{provider}.keys.{i}.{refused}: only keys of {' or '.join(kinds)}-kind "
                              "providers have an organization or project")
        headers = tuple((h, getattr(k, f)) for f, h in takes.items() if getattr(k, f) is not None)
        if headers:
            accounts[k.key] = headers
    return accounts


def _builtins() -> None:
    """Import each module of this package: each registers one built-in provider."""
    for module in pkgutil.iter_modules(__path__):
        if module.name not in ("credentials", "login", "platform", "signer", "wire"):
            importlib.import_module(f"{__name__}.{module.name}")


_builtins()

"""Google Vertex AI (protocols/platforms/vertex.py): Gemini and Claude at `aiplatform.googleapis.com`, each region's
`{region}-aiplatform.googleapis.com` and the multi-regions' `aiplatform.{us,eu}.rep.googleapis.com`, the model,
project and region in the path. Without keys, the client's own token (or express API key) goes to the host it
called; with service accounts (`keys: [{service_account: FILE}]`), Rotator mints each account's tokens and puts its
project in the path (rewrite/plugins/payers/vertex.py). `regions` says where a request throttled in one region goes
next."""

from __future__ import annotations

from pathlib import Path

from protocols.families import CredentialStyle
from protocols.families.google_rpc import RPC_ERRORS
from protocols.platforms import vertex as wire
from protocols.platforms.google_auth import ServiceAccount, ServiceAccountError, service_account
from rewrite.config import ConfigError
from rewrite.config_providers import KeyConfig, ProviderConfig
from rewrite.providers import ProviderSpec, register
from rewrite.providers.platform import REGIONS, Configured, Platform

NOT_A_VERTEX_KEY = ("key", "organization", "project")  # (another platform's key fields: rewrite/providers/)


def configure(name: str, pc: ProviderConfig) -> Configured:
    """Each key's service account read from its JSON key file (named in the pool by its key's id)."""
    keys: list[KeyConfig] = []
    held: dict[str, object] = {}
    for i, k in enumerate(pc.keys):
        where = f"providers.{name}.keys.{i}"
        if (other := next((f for f in NOT_A_VERTEX_KEY if getattr(k, f)), None)) is not None:
            raise ConfigError(f"{where}.{other}: a {name} key is a service account (`service_account: FILE`)")
        account = read_account(f"{where}.service_account", k.service_account or "")
        if account.key_id in held:
            raise ConfigError(f"{where}.service_account: the same service account key as another key's")
        keys.append(k.model_copy(update={"key": account.key_id, "service_account": None}))
        held[account.key_id] = account
    return Configured(keys, held, regions=tuple(pc.regions))


def read_account(where: str, path: str) -> ServiceAccount:
    """A service account from its key file; ConfigError naming `where` (the field) if it cannot be used."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"{where}: cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {path} is not text") from None
    try:
        return service_account(text)
    except ServiceAccountError as e:
        raise ConfigError(f"{where}: {path} {e}") from None


PLATFORM = Platform(
    paths=wire.GENERATION,
    families=("gemini", "anthropic"),
    credential=CredentialStyle("authorization", "Bearer {}", ("authorization", "x-goog-api-key"), client_query="key"),
    errors=(*RPC_ERRORS, wire.exhausted),
    envelope=wire.ENVELOPE,
    payer="vertex",
    configure=configure,
    takes=frozenset({"service_account", REGIONS}),
)

register(ProviderSpec("vertex", "gemini", wire.HOSTS, "", "", platform=PLATFORM))

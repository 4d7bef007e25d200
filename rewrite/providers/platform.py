"""What makes a built-in provider a cloud platform (`ProviderSpec.platform`): one provider whose hosts serve several
vendors' protocols (Vertex AI: Gemini and Claude; Azure: OpenAI's and Claude; Bedrock: Converse and Claude in
InvokeModel), each call wrapped in the platform's envelope (the model and project in the path, the deployment a
resource's own name for a model, Anthropic's body in Bedrock's). Like a login it is a `Wire`
(rewrite/providers/wire.py); unlike a login, it may be pooled: its keys are the platform's own shapes (an Azure key
with its resource's endpoint and deployments, a Google service account whose tokens Rotator mints, AWS keys or a
Bedrock API key in each region), read by its `configure`, and its payer (rewrite/plugins/payers/, by `payer`) puts
each key's place (host, deployment, project, region) into the request besides its credential, or signs it
(rewrite/providers/signer.py). Without keys, the client's own credential goes to the host it called, and the
request gets every repair a client's credential allows (a request its client signed goes byte for byte).

What its wire says beyond its protocols is pure and lives in protocols/platforms/<name>.py (Bedrock's in
protocols/bedrock/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protocols.envelope import Envelope
from rewrite.config_providers import KeyConfig, ProviderConfig
from rewrite.providers.wire import Wire

# The fields of a key only a platform's keys have (each platform's `takes` says which of them are its).
PLATFORM_KEY_FIELDS = ("endpoint", "deployments", "service_account", "access_key_id", "secret_access_key",
                       "session_token", "bearer", "region")
REGIONS = "regions"  # the provider setting only a platform takes (one whose `takes` names it)


@dataclass(frozen=True)
class Configured:
    """A platform's provider as its config makes it."""

    keys: list[KeyConfig]  # the pool's keys (a service account named by its key's id; an AWS key per region)
    held: dict[str, object] = field(default_factory=dict)  # what each pooled key carries besides: its place, its key
    envelope: Envelope | None = None  # the envelope for these keys (Azure's deployments), else the wire's
    regions: tuple[str, ...] = ()  # where its requests go (Bedrock's keys, each in each) or go next (Vertex)


def unconfigured(name: str, pc: ProviderConfig) -> Configured:
    return Configured(pc.keys)


@dataclass(frozen=True)
class Platform(Wire):
    payer: str = ""  # the payer the who-pays plug-in makes for its requests (rewrite/plugins/payers/__init__.py)
    # Its config read (ConfigError naming the field for a key it cannot use): its pool's keys and what they carry.
    configure: Callable[[str, ProviderConfig], Configured] = unconfigured
    # Which of the fields only a platform's config has are its (PLATFORM_KEY_FIELDS, `regions`): another's on one
    # of its keys stops start-up, naming the field and the platforms that take it.
    takes: frozenset[str] = frozenset()

    def fields(self, name: str, pc: ProviderConfig, configured: Any) -> dict:
        """Its provider's: the envelope of its keys (else its own), what each key carries besides, its regions."""
        assert isinstance(configured, Configured)  # (rewrite/providers/__init__.py configures every platform)
        return {"envelope": configured.envelope or self.envelope, "platform": self, "held": configured.held,
                "regions": configured.regions}

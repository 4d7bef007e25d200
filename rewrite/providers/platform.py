"""What makes a built-in provider a cloud platform (`ProviderSpec.platform`): one provider whose hosts serve several
vendors' protocols (Vertex AI: Gemini and Claude; Azure: OpenAI's and Claude), each call wrapped in the platform's
envelope (the model and project in the path, the deployment a resource's own name for a model). Like a login it is a
`Wire` (rewrite/providers/wire.py); unlike a login, it may be pooled: its keys are the platform's own shapes (an Azure
key with its resource's endpoint and deployments, a Google service account whose tokens Rotator mints), read by its
`configure`, and its payer (rewrite/plugins/payers/, by `payer`) puts each key's place (host, deployment, project,
region) into the request besides its credential. Without keys, the client's own credential goes to the host it
called, and the request gets every repair.

What its wire says beyond its protocols is pure and lives in protocols/platforms/<name>.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from protocols.envelope import Envelope
from rewrite.config_providers import KeyConfig, ProviderConfig
from rewrite.providers.wire import Wire

# The fields of a key only a platform's keys have, and the provider settings only a platform takes.
PLATFORM_KEY_FIELDS = ("endpoint", "deployments", "service_account")


@dataclass(frozen=True)
class Configured:
    """A platform's provider as its config makes it."""

    keys: list[KeyConfig]  # the pool's keys (a service account named by its key's id)
    held: dict[str, object] = field(default_factory=dict)  # what each pooled key carries besides: its place, its key
    envelope: Envelope | None = None  # the envelope for these keys (Azure's deployments), else the wire's
    regions: tuple[str, ...] = ()  # where a request throttled in one region goes next (Vertex)


def unconfigured(name: str, pc: ProviderConfig) -> Configured:
    return Configured(pc.keys)


@dataclass(frozen=True)
class Platform(Wire):
    payer: str = ""  # the payer the who-pays plug-in makes for its requests (rewrite/plugins/payers/__init__.py)
    # Its config read (ConfigError naming the field for a key it cannot use): its pool's keys and what they carry.
    configure: Callable[[str, ProviderConfig], Configured] = unconfigured

"""Azure OpenAI and Azure AI Foundry (protocols/platforms/azure.py): OpenAI's Chat Completions and Responses and
Anthropic's Messages at each resource's `*.openai.azure.com`, `*.cognitiveservices.azure.com` or
`*.services.ai.azure.com`. Without keys, the client's own key or Entra token goes to the resource it called; with
keys (`{key, endpoint, deployments}`), each is sent to its own resource, the model asked as that resource's
deployment of it (rewrite/plugins/payers/azure.py)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from protocols.families import CredentialStyle
from protocols.platforms import azure as wire
from rewrite.config import ConfigError
from rewrite.config_providers import KeyConfig, ProviderConfig
from rewrite.providers import ProviderSpec, register
from rewrite.providers.platform import Configured, Platform

NOT_AN_AZURE_KEY = ("organization", "project")  # (another platform's key fields: rewrite/providers/)


@dataclass(frozen=True)
class Resource:
    """Where an Azure key serves: its resource's host, and that resource's deployment of each model."""

    host: str
    deployments: dict[str, str]  # model -> deployment

    def deployment(self, model: str) -> str:
        """The resource's deployment of `model` (the model's own name, when the config names none)."""
        return self.deployments.get(model, model)


def configure(name: str, pc: ProviderConfig) -> Configured:
    """Each key's resource; the envelope told which model each deployment serves."""
    held: dict[str, object] = {}
    models: dict[str, str] = {}
    for i, k in enumerate(pc.keys):
        where = f"providers.{name}.keys.{i}"
        if (other := next((f for f in NOT_AN_AZURE_KEY if getattr(k, f)), None)) is not None:
            raise ConfigError(f"{where}.{other}: an {name} key is `key`, `endpoint` and `deployments`")
        if k.endpoint is None:
            raise ConfigError(f"{where}.endpoint: required (the key's resource: https://RESOURCE.openai.azure.com)")
        held[k.key] = Resource(urlsplit(k.endpoint).netloc.lower(), dict(k.deployments))
        for model, deployment in k.deployments.items():
            models.setdefault(deployment, model)
    if pc.regions:
        raise ConfigError(f"providers.{name}.regions: an {name} key's endpoint names its region")
    keys: list[KeyConfig] = list(pc.keys)
    return Configured(keys, held, envelope=wire.envelope(models) if models else None)


PLATFORM = Platform(
    paths=wire.GENERATION,
    families=("openai", "anthropic"),
    credential=CredentialStyle("api-key", "{}", ("api-key", "authorization", "x-api-key")),
    errors=(wire.retry_in_words,),
    envelope=wire.ENVELOPE,
    payer="azure",
    configure=configure,
    takes=frozenset({"endpoint", "deployments"}),
)

register(ProviderSpec("azure", "openai", wire.HOSTS, "", "", platform=PLATFORM))

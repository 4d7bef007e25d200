"""Amazon Bedrock's runtime at `bedrock-runtime.<region>.amazonaws.com`, a cloud platform (rewrite/providers/
platform.py) whose requests are signed (rewrite/providers/signer.py), sent where its client called (the region is
the host's): Converse (`/model/{id}/converse`, `/converse-stream`) and InvokeModel with Anthropic bodies
(`/model/{id}/invoke`, `/invoke-with-response-stream`), Anthropic Messages in Bedrock's envelope
(protocols/bedrock/invoke.py); every other call (count-tokens, guardrails, another vendor's InvokeModel body) is
forwarded with only its credential put in. Its requests are signed with AWS SigV4: by the client (they go as they
came) or, with keys (AWS keys or Bedrock API keys, each in each of `regions`), by Rotator
(rewrite/plugins/payers/signing.py)."""

from __future__ import annotations

import re

from protocols.bedrock import invoke
from protocols.families.bedrock import CREDENTIAL
from rewrite.config import ConfigError
from rewrite.config_providers import AWS_REGION, KeyConfig, ProviderConfig
from rewrite.providers import ProviderSpec, register
from rewrite.providers.platform import REGIONS, Configured
from rewrite.providers.signer import CloudKey, Signer, SigningPlatform

NOT_A_BEDROCK_KEY = ("organization", "project")


def configure(name: str, pc: ProviderConfig) -> Configured:
    """Its pool: each configured credential in each region it serves (its own `region`, else each of the provider's
    `regions`, else the one its client calls), named `<id>@<region>`, and what each pooled name stands for."""
    for i, named in enumerate(pc.regions):
        if not re.match(AWS_REGION, named):
            raise ConfigError(f"providers.{name}.regions.{i}: {named!r} is not an AWS region (us-east-1)")
    keys: list[KeyConfig] = []
    held: dict[str, object] = {}
    for i, k in enumerate(pc.keys):
        if (other := next((f for f in NOT_A_BEDROCK_KEY if getattr(k, f)), None)) is not None:
            raise ConfigError(f"providers.{name}.keys.{i}.{other}: a {name} key is AWS keys (`access_key_id`, "
                              "`secret_access_key`, `session_token`) or a Bedrock API key (`bearer`), and a `region`")
        places: list[str | None] = [k.region] if k.region else [*pc.regions] or [None]
        for region in places:
            if k.access_key_id:
                entry = CloudKey(k.access_key_id, region, k.secret_access_key, k.session_token)
            else:
                entry = CloudKey(k.bearer or k.key, region, bearer=True)  # (a plain `key` is an API key too)
            keys.append(k.model_copy(update={"key": entry.pooled_as}))
            held[entry.pooled_as] = entry
    return Configured(keys, held, regions=tuple(pc.regions))


PLATFORM = SigningPlatform(
    paths=re.compile(r"/model/[^/]+/(invoke|invoke-with-response-stream|converse|converse-stream)"),
    families=("bedrock", "anthropic"),
    credential=CREDENTIAL,
    envelope=invoke.ENVELOPE,
    foreign_body=invoke.anthropic_body,
    carried=invoke.beta_headers,
    payer="sigv4",
    configure=configure,
    takes=frozenset({"access_key_id", "secret_access_key", "session_token", "bearer", "region", REGIONS}),
    signer=Signer("bedrock", "bedrock-runtime.{region}.amazonaws.com"),
)

register(ProviderSpec("bedrock", "bedrock", ("bedrock-runtime.*.amazonaws.com",), "", "", platform=PLATFORM))

"""Amazon Bedrock's runtime at `bedrock-runtime.<region>.amazonaws.com`, sent where its client called (the region is
the host's): Converse (`/model/{id}/converse`, `/converse-stream`) and InvokeModel with Anthropic bodies
(`/model/{id}/invoke`, `/invoke-with-response-stream`), Anthropic Messages in Bedrock's envelope
(protocols/bedrock/invoke.py); every other call (count-tokens, guardrails, another vendor's InvokeModel body) is
forwarded with only its credential put in. Its requests are signed with AWS SigV4 (rewrite/providers/signer.py): by
the client (they go as they came) or, with a pool configured, by Rotator."""

import re

from protocols.bedrock import invoke
from rewrite.providers import ProviderSpec, register
from rewrite.providers.calls import Calls
from rewrite.providers.signer import Signer

CALLS = Calls(
    paths=re.compile(r"/model/[^/]+/(invoke|invoke-with-response-stream|converse|converse-stream)"),
    families=("bedrock", "anthropic"),
    envelope=invoke.ENVELOPE,
    foreign_body=invoke.anthropic_body,
)

SIGNER = Signer("bedrock", "bedrock-runtime.{region}.amazonaws.com")

register(ProviderSpec("bedrock", "bedrock", ("bedrock-runtime.*.amazonaws.com",), "", "", calls=CALLS, signer=SIGNER))

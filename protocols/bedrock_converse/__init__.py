"""Amazon Bedrock Converse: its stream repairer (stream.py) and aggregator (folding.py), its translator to and from
the unified form (translate/), its usage reader (usage.py); its errors are Bedrock's (protocols/bedrock/errors.py);
and its registration, all the engine knows of it.

Its streams are AWS event streams: the protocol's `parser()` reads them (protocols/eventstream/). A provider of the
bedrock family takes a Bedrock API key as `Authorization: Bearer`; a request the client signed with SigV4 carries
its credential in `authorization` and the `x-amz-*` headers that go with it (signing with AWS keys is the engine's).
Not in `protocols.PACKAGES` yet: the engine serves it once it reads event streams.
"""

from protocols.bedrock.errors import BEDROCK_ERRORS
from protocols.bedrock_converse.stream import Converse
from protocols.bedrock_converse.translate import TRANSLATOR
from protocols.bedrock_converse.usage import ConverseSniffer
from protocols.registration import CredentialStyle, Registration

BEDROCK_CREDENTIAL = CredentialStyle(
    "authorization", "Bearer {}",
    ("authorization", "x-amz-security-token", "x-amz-date", "x-amz-content-sha256"),
)

# Stateful: reasoning blocks and their signatures (an Anthropic model's), which must come back signed.
REGISTRATION = Registration(Converse(), TRANSLATOR, ConverseSniffer, "Bedrock Converse", BEDROCK_CREDENTIAL,
                            stateful=True, errors=BEDROCK_ERRORS, signed_thinking=True)

"""Amazon Bedrock's family: how its providers take a Bedrock API key (a client's SigV4 signature carries its
credential in `authorization` and `x-amz-security-token`, with `x-amz-date` and `x-amz-content-sha256` beside it:
signing with AWS keys is the engine's), its error reader (errors.py) and its models (models.py: other vendors'
models, under Bedrock's ids). Its protocols: Converse (protocols/bedrock_converse/); its InvokeModel calls carry
Anthropic Messages (protocols/bedrock/invoke.py)."""

from protocols.families import CredentialStyle, Family
from protocols.families.bedrock.errors import BEDROCK_ERRORS
from protocols.families.bedrock.models import UNKNOWN, hosted

NAME = "bedrock"
CREDENTIAL = CredentialStyle(
    "authorization", "Bearer {}", ("authorization", "x-amz-security-token"),
    account_headers=("x-amz-date", "x-amz-content-sha256"),  # (what a client's signature came with)
)

FAMILY = Family(NAME, CREDENTIAL, errors=BEDROCK_ERRORS, unknown=UNKNOWN, hosted=hosted)

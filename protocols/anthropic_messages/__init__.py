"""Anthropic Messages: its stream repairer and aggregator (stream.py), its translator to and from the unified
form (translate/), its usage reader (usage.py), its error reader (errors.py); and its registration, all the engine
knows of it."""

from protocols.anthropic_messages import conversation
from protocols.anthropic_messages.errors import ANTHROPIC_ERRORS
from protocols.anthropic_messages.stream import AnthropicMessages
from protocols.anthropic_messages.translate import TRANSLATOR
from protocols.anthropic_messages.usage import MessagesSniffer
from protocols.anthropic_messages.windows import ANTHROPIC_WINDOWS
from protocols.capabilities import Capabilities
from protocols.registration import CredentialStyle, Registration

ANTHROPIC_CREDENTIAL = CredentialStyle("x-api-key", "{}", ("x-api-key", "authorization"), account_headers=("cookie",))

VERSION_HEADER = "anthropic-version"


def version_header(caps: Capabilities) -> tuple[tuple[str, str], ...]:
    """The API version the model's capabilities name (a client of Anthropic sends its own)."""
    return ((VERSION_HEADER, caps.anthropic_version),) if caps.anthropic_version else ()


# Stateful: thinking blocks and their signatures, which must come back signed (signed_thinking).
REGISTRATION = Registration(AnthropicMessages(), TRANSLATOR, MessagesSniffer, "Anthropic Messages",
                            ANTHROPIC_CREDENTIAL, stateful=True, errors=ANTHROPIC_ERRORS, signed_thinking=True,
                            required_headers=version_header, windows=ANTHROPIC_WINDOWS,
                            conversation=conversation.READER)

# Its mid-stream resume (resume.py) registers itself with protocols.resume.
from protocols.anthropic_messages import resume as _resume  # noqa: E402,F401

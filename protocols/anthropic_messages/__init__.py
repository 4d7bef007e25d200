"""Anthropic Messages: its stream repairer and aggregator (stream.py), its translator to and from the unified
form (translate.py), its usage reader (usage.py); and its registration, all the engine knows of it."""

from protocols.anthropic_messages import conversation
from protocols.anthropic_messages.stream import AnthropicMessages
from protocols.anthropic_messages.translate import TRANSLATOR
from protocols.anthropic_messages.usage import MessagesSniffer
from protocols.registration import CredentialStyle, Registration

ANTHROPIC_CREDENTIAL = CredentialStyle("x-api-key", "{}", ("x-api-key", "authorization"), account_headers=("cookie",))

# Stateful: thinking blocks and their signatures.
REGISTRATION = Registration(AnthropicMessages(), TRANSLATOR, MessagesSniffer, "Anthropic Messages",
                            ANTHROPIC_CREDENTIAL, stateful=True, conversation=conversation.READER)

# Its mid-stream resume (resume.py) registers itself with protocols.resume.
from protocols.anthropic_messages import resume as _resume  # noqa: E402,F401

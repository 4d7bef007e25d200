"""Anthropic Messages: its stream repairer and aggregator (stream.py), its translator to and from the unified form
(translate/), its usage reader (usage.py), its conversation evidence (evidence.py), its mid-stream resume (resume.py);
and its registration, all the engine knows of it. Its family, Anthropic's, is protocols/families/anthropic/."""

from protocols.anthropic_messages import evidence, resume
from protocols.anthropic_messages.stream import AnthropicMessages
from protocols.anthropic_messages.translate import TRANSLATOR
from protocols.anthropic_messages.usage import MessagesSniffer
from protocols.capabilities import Capabilities
from protocols.families import anthropic
from protocols.registration import Registration

VERSION_HEADER = "anthropic-version"


def version_header(caps: Capabilities) -> tuple[tuple[str, str], ...]:
    """The API version the model's capabilities name (a client of Anthropic sends its own)."""
    return ((VERSION_HEADER, caps.anthropic_version),) if caps.anthropic_version else ()


# Stateful: thinking blocks and their signatures, which must come back signed (signed_thinking).
REGISTRATION = Registration(AnthropicMessages(), TRANSLATOR, MessagesSniffer, "Anthropic Messages", anthropic.FAMILY,
                            stateful=True, signed_thinking=True, required_headers=version_header,
                            evidence=evidence.READER, resumer=resume.RESUMER)

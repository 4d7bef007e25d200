"""Anthropic Messages: its stream repairer and aggregator (stream.py), its translator to and from the unified form
(translate/), its usage reader (usage.py), its conversation evidence (evidence.py), its mid-stream resume (resume.py);
and its registration, all the engine knows of it. Its family, Anthropic's, is protocols/families/anthropic/."""

from protocols.anthropic_messages import evidence, resume
from protocols.anthropic_messages.stream import AnthropicMessages
from protocols.anthropic_messages.translate import TRANSLATOR
from protocols.anthropic_messages.usage import MessagesSniffer
from protocols.families import anthropic
from protocols.registration import Registration

VERSION_HEADER = "anthropic-version"

# Stateful: thinking blocks and their signatures, which must come back signed (signed_thinking). A translated
# request carries the API version the model's capabilities name (a client of Anthropic sends its own).
REGISTRATION = Registration(AnthropicMessages(), TRANSLATOR, MessagesSniffer, "Anthropic Messages", anthropic.FAMILY,
                            stateful=True, signed_thinking=True,
                            required_headers=((VERSION_HEADER, "anthropic_version"),), evidence=evidence.READER,
                            resumer=resume.RESUMER)

"""Sans-I/O knowledge of the LLM wire protocols: recognising requests, framing SSE, repairing and folding streams,
translating between them.

A protocol is one folder, `protocols/<name>/`, whose `__init__.py` builds its `REGISTRATION`
(protocols/registration.py); adding one means that folder and its package in `PACKAGES` below. What is its vendor's
rather than its wire's is its family's: one package in `protocols/families/`, whose `__init__.py` builds its
`FAMILY`, registered in `FAMILIES` below.
"""

from protocols.base import ENDING_ERROR, ENDING_LENGTH, Aggregator, Protocol, Repairer
from protocols.events import Event
from protocols.registry import all, detect, get, register, register_family, registered, registrations
from protocols.sse import SSEParser, format_event

from protocols.families import anthropic as anthropic_family  # isort: skip (after the registry)
from protocols.families import bedrock as bedrock_family  # isort: skip
from protocols.families import gemini as gemini_family  # isort: skip
from protocols.families import openai as openai_family  # isort: skip
from protocols import anthropic_messages, bedrock_converse, gemini, openai_chat, openai_responses  # isort: skip

FAMILIES = (openai_family, anthropic_family, gemini_family, bedrock_family)
for _family in FAMILIES:
    register_family(_family.FAMILY)

# Registration order: the order `all()` lists them in, the order requests are recognised in, and a family's
# first protocol is what its providers speak by default.
PACKAGES = (openai_chat, openai_responses, anthropic_messages, gemini, bedrock_converse)
for _package in PACKAGES:
    register(_package.REGISTRATION)

__all__ = [
    "ENDING_ERROR",
    "ENDING_LENGTH",
    "FAMILIES",
    "PACKAGES",
    "Aggregator",
    "Event",
    "Protocol",
    "Repairer",
    "SSEParser",
    "all",
    "detect",
    "format_event",
    "get",
    "register",
    "register_family",
    "registered",
    "registrations",
]

"""Sans-I/O knowledge of the LLM wire protocols: recognising requests, framing SSE, repairing and folding streams.

Adding a protocol means one new module that registers its `Protocol` instance, plus one import line below.
"""

from .base import ENDING_ERROR, ENDING_LENGTH, Aggregator, Event, Protocol, Repairer
from .registry import all, detect, get, register
from .sse import SSEParser, format_event

from . import openai_chat, openai_responses, anthropic_messages, gemini  # noqa: E402,F401  (they register)

__all__ = [
    "ENDING_ERROR",
    "ENDING_LENGTH",
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
]

"""Sans-I/O knowledge of the LLM wire protocols: recognising requests, framing SSE, repairing and folding streams.

Adding a protocol means one new module that registers its `Protocol` instance, plus one import line below.
"""

from protocols.base import ENDING_ERROR, ENDING_LENGTH, Aggregator, Event, Protocol, Repairer
from protocols.registry import all, detect, get, register
from protocols.sse import SSEParser, format_event

# isort: off  (registration order is the order `all()` lists them in)
from protocols.openai_chat import stream as _openai_chat  # noqa: F401  (each registers itself)
from protocols.openai_responses import stream as _openai_responses  # noqa: F401
from protocols.anthropic_messages import stream as _anthropic_messages  # noqa: F401
from protocols.gemini import stream as _gemini  # noqa: F401
# isort: on

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

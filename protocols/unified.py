"""The unified representation (IR) every protocol translates through: a generation request and a non-stream answer
(the events of a streamed answer are protocols/unified_stream.py).

Pure data: nothing here knows a wire format. `protocols/translate/` turns each protocol's JSON and SSE into these
and back. Conventions the translators rely on:

- Token counts follow OpenAI's meaning, so each token is counted once: `input_tokens` is the whole prompt
  (cache reads and writes included), `output_tokens` the whole output (reasoning included); `cache_read`,
  `cache_write` and `reasoning` are parts of those totals, never added to them.
- Tool call arguments are always a JSON *string*, as they stream. Protocols that carry an object parse it.
- Opaque reasoning state (an Anthropic thinking signature, a Gemini thoughtSignature, Responses
  `encrypted_content`) carries the name of the protocol that issued it: it is only ever sent back there.
- Tool use is decided by the presence of tool calls, not by the source's finish reason.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

# Roles. Tool results travel in messages of their own role; system/developer messages keep their place.
ROLE_SYSTEM = "system"
ROLE_DEVELOPER = "developer"
ROLE_USER = "user"
ROLE_ASSISTANT = "assistant"
ROLE_TOOL = "tool"
INSTRUCTION_ROLES = frozenset({ROLE_SYSTEM, ROLE_DEVELOPER})

# Why an answer ended.
FINISH_STOP = "stop"
FINISH_LENGTH = "length"
FINISH_TOOL_CALLS = "tool_calls"
FINISH_CONTENT_FILTER = "content_filter"

# tool_choice modes.
CHOICE_AUTO = "auto"
CHOICE_NONE = "none"
CHOICE_REQUIRED = "required"
CHOICE_TOOL = "tool"

# Prefix of the tool call ids Rotator makes up for a source that gives none (Gemini).
GENERATED_TOOL_ID_PREFIX = "call_rot"


# --- content parts


@dataclass(slots=True)
class Text:
    text: str


@dataclass(slots=True)
class Image:
    """An image by URL, or inline as base64 `data` with its media type."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None


@dataclass(slots=True)
class Reasoning:
    """Reasoning/thinking text, with the opaque state that lets its issuer verify it when it is replayed.

    `redacted` marks an Anthropic redacted_thinking block (its data is the signature; there is no text).
    `id` is the issuer's item id (a Responses reasoning item), kept for replay to that issuer.
    """

    text: str = ""
    signature: str | None = None
    origin: str | None = None
    redacted: bool = False
    id: str | None = None


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str = ""
    signature: str | None = None  # Gemini thoughtSignature on the functionCall part
    origin: str | None = None


@dataclass(slots=True)
class ToolResult:
    call_id: str
    content: list[Text | Image] = field(default_factory=list)
    name: str | None = None  # Gemini needs it; filled from the matching call by `name_tool_results`
    is_error: bool = False

    def text(self) -> str:
        return "".join(part.text for part in self.content if isinstance(part, Text))


Part = Text | Image | Reasoning | ToolCall | ToolResult


@dataclass(slots=True)
class Message:
    role: str
    parts: list[Part] = field(default_factory=list)


# --- request


@dataclass(slots=True)
class Tool:
    """A client's tool. `name` is the name the model sees on every target (a namespaced tool's flattened
    `<ns>__<name>`); `namespace` and `name_in_namespace` are what the client calls it (`protocols/translate/tools.py`).

    `custom_format` marks a freeform tool (OpenAI `custom`): the format its raw text input follows
    (`{"type": "text"}` or a grammar). Its calls carry that text as the arguments `{"input": text}`.
    """

    name: str
    description: str | None = None
    parameters: dict | None = None  # JSON Schema
    strict: bool | None = None
    custom_format: dict | None = None
    namespace: str | None = None
    name_in_namespace: str | None = None


@dataclass(slots=True)
class ToolChoice:
    mode: str = CHOICE_AUTO
    name: str | None = None  # with CHOICE_TOOL


@dataclass(slots=True)
class ReasoningConfig:
    """How much to think: an effort level (OpenAI) and/or a token budget (Anthropic, Gemini); None = unsaid."""

    effort: str | None = None
    budget: int | None = None
    enabled: bool = True
    include_thoughts: bool | None = None


@dataclass(slots=True)
class ResponseFormat:
    """Structured output: plain JSON, or JSON matching `schema`."""

    schema: dict | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(slots=True)
class Request:
    model: str = ""
    messages: list[Message] = field(default_factory=list)
    system: str | None = None  # the top-level instructions (Anthropic system, Gemini systemInstruction, ...)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    reasoning: ReasoningConfig | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    stream: bool = False
    include_usage: bool = False  # an OpenAI Chat stream asked for its usage chunk


def instructions(request: Request) -> str | None:
    """Every system/developer instruction in order, joined by blank lines: for protocols with one system field.

    Lossy: an instruction in the middle of the conversation loses its position.
    """
    texts = [request.system] if request.system else []
    for message in request.messages:
        if message.role in INSTRUCTION_ROLES:
            texts.append("".join(part.text for part in message.parts if isinstance(part, Text)))
    return "\n\n".join(text for text in texts if text) or None


def name_tool_results(messages: list[Message]) -> None:
    """Give every tool result without a name the name of the call it answers (Gemini needs the name)."""
    names: dict[str, str] = {}
    for message in messages:
        for part in message.parts:
            if isinstance(part, ToolCall):
                names[part.id] = part.name
            elif isinstance(part, ToolResult) and not part.name:
                part.name = names.get(part.call_id)


# --- usage and answers


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class Answer:
    """A whole (non-stream) answer: the content in order, why it ended, what it cost."""

    id: str = ""
    model: str = ""
    created: int = 0  # Unix time, where the source says
    parts: list[Text | Reasoning | ToolCall] = field(default_factory=list)
    finish: str = FINISH_STOP
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)

    def tool_calls(self) -> list[ToolCall]:
        return [part for part in self.parts if isinstance(part, ToolCall)]

    def text(self) -> str:
        return "".join(part.text for part in self.parts if isinstance(part, Text))


def client_finish(finish: str, has_tool_calls: bool) -> str:
    """The finish to report: tool use is decided by the presence of tool calls, a cut answer stays cut."""
    if finish == FINISH_STOP and has_tool_calls:
        return FINISH_TOOL_CALLS
    if finish == FINISH_TOOL_CALLS and not has_tool_calls:
        return FINISH_STOP
    return finish


# --- tool call ids


def stable_tool_id(name: str, arguments: object, ordinal: int) -> str:
    """An id for a call its source gave none: the same call (name, arguments, position in its turn) always gets
    the same id, whether it is read from the answer or replayed in a later request."""
    canonical = json.dumps([name, arguments, ordinal], sort_keys=True, separators=(",", ":"))
    return GENERATED_TOOL_ID_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()[:24]


class ToolIds:
    """Hands out the tool call ids clients see: the vendor's own, or a stable one where the vendor gives none.

    The mapping hook for state kept per call: `vendor_ids` maps every id handed out to the vendor's id (None
    when Rotator made it up); a later field cache can subclass `issue` to key on the id handed out.
    """

    def __init__(self) -> None:
        self.vendor_ids: dict[str, str | None] = {}

    def issue(self, vendor_id: str | None, name: str, arguments: object, ordinal: int) -> str:
        handed_out = vendor_id or stable_tool_id(name, arguments, ordinal)
        self.vendor_ids[handed_out] = vendor_id or None
        return handed_out

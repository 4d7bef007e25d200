"""The unified representation (IR) every protocol translates through: a generation request, a non-stream answer,
and the events of a streamed answer.

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


def whole_arguments(arguments: str) -> bool:
    """Whether the arguments of a call a stream cut before its end are complete JSON: a cut leaves a prefix that
    is not, or nothing at all (a call cut right after its name cannot be told from one without arguments, and
    is not run)."""
    if not arguments.strip():
        return False
    try:
        json.loads(arguments)
    except ValueError:
        return False
    return True


# --- stream events


@dataclass(slots=True)
class Start:
    id: str = ""
    model: str = ""
    created: int = 0


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ReasoningDelta:
    text: str


@dataclass(slots=True)
class ReasoningEnd:
    """The current reasoning segment ended; its opaque state, if the source gave one (or a redacted block)."""

    signature: str | None = None
    origin: str | None = None
    redacted: bool = False
    id: str | None = None


@dataclass(slots=True)
class ToolCallStart:
    """A tool call begins: its id and name come once, here. `index` counts calls from 0 in order of appearance."""

    index: int
    id: str
    name: str
    signature: str | None = None
    origin: str | None = None


@dataclass(slots=True)
class ToolArgumentsDelta:
    index: int
    fragment: str


@dataclass(slots=True)
class ToolCallEnd:
    index: int


@dataclass(slots=True)
class UsageUpdate:
    """The usage so far: a cumulative snapshot that replaces the previous one."""

    usage: Usage


@dataclass(slots=True)
class Finish:
    reason: str = FINISH_STOP
    stop_sequence: str | None = None


@dataclass(slots=True)
class Error:
    """An error in place of the rest of the answer (an in-stream error, or an error body)."""

    status: int = 500
    message: str = ""
    kind: str | None = None  # a canonical cause clients branch on (KIND_CONTEXT_LENGTH), if recognised


KIND_CONTEXT_LENGTH = "context_length"
KIND_TRUNCATED = "truncated"  # Rotator's own error: the upstream stream was cut

StreamEvent = (
    Start | TextDelta | ReasoningDelta | ReasoningEnd | ToolCallStart | ToolArgumentsDelta | ToolCallEnd
    | UsageUpdate | Finish | Error
)


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


# --- folding a stream into an answer


class AnswerBuilder:
    """Folds stream events into an `Answer` (for a non-stream client served by a streamed upstream).

    A cut stream (`result(truncated=True)`) ends with FINISH_LENGTH, and a tool call whose arguments were cut
    is left out: no agent runs half-written arguments.
    """

    def __init__(self) -> None:
        self.answer = Answer()
        self.error: Error | None = None
        self.finished = False
        self._calls: dict[int, ToolCall] = {}
        self._ended: set[int] = set()

    def feed(self, event: StreamEvent) -> None:
        parts = self.answer.parts
        last = parts[-1] if parts else None
        if isinstance(event, TextDelta):
            if isinstance(last, Text):
                last.text += event.text
            else:
                parts.append(Text(event.text))
        elif isinstance(event, ReasoningDelta):
            if isinstance(last, Reasoning) and last.signature is None and not last.redacted:
                last.text += event.text
            else:
                parts.append(Reasoning(event.text))
        elif isinstance(event, ReasoningEnd):
            if not (isinstance(last, Reasoning) and last.signature is None and not last.redacted):
                last = Reasoning()
                parts.append(last)
            last.signature, last.origin = event.signature, event.origin
            last.redacted, last.id = event.redacted, event.id
        elif isinstance(event, ToolCallStart):
            call = ToolCall(event.id, event.name, "", event.signature, event.origin)
            self._calls[event.index] = call
            parts.append(call)
        elif isinstance(event, ToolCallEnd):
            self._ended.add(event.index)
        elif isinstance(event, ToolArgumentsDelta):
            growing = self._calls.get(event.index)
            if growing is not None:
                growing.arguments += event.fragment
        elif isinstance(event, UsageUpdate):
            self.answer.usage = event.usage
        elif isinstance(event, Start):
            self.answer.id, self.answer.model, self.answer.created = event.id, event.model, event.created
        elif isinstance(event, Finish):
            self.finished = True
            self.answer.finish, self.answer.stop_sequence = event.reason, event.stop_sequence
        elif isinstance(event, Error):
            self.error = event

    def result(self, truncated: bool = False) -> Answer:
        answer = self.answer
        if truncated and not self.finished:
            answer.finish = FINISH_LENGTH
            cut = [c for i, c in self._calls.items() if i not in self._ended and not whole_arguments(c.arguments)]
            answer.parts = [p for p in answer.parts if not any(p is c for c in cut)]
        for part in answer.parts:
            if isinstance(part, ToolCall) and not part.arguments:
                part.arguments = "{}"
        return answer

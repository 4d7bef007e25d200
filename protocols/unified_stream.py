"""The unified representation of a streamed answer (protocols/unified.py has the request and the whole answer): the
events every protocol's stream translates through, in order, and their folding into an `Answer`.

Pure data, as protocols/unified.py: a decoder (`protocols/<name>/translate/stream_in.py`) reads a protocol's SSE
into these events, an encoder (`stream_out.py`) writes them back out in another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from protocols.unified import (
    FINISH_LENGTH,
    FINISH_STOP,
    Answer,
    Reasoning,
    Text,
    ToolCall,
    Usage,
)


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

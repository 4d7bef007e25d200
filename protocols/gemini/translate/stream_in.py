"""An upstream's Gemini generateContent stream read into unified stream events (the translator's decoder)."""

from __future__ import annotations

from protocols.events import Event
from protocols.gemini.translate.answer_in import BROKEN_STATUS, broken, finish_of
from protocols.gemini.translate.vocabulary import NAME, get_field
from protocols.gemini.usage import usage_to_ir
from protocols.sse import load_object
from protocols.translate.base import Decoder
from protocols.translate.common import dump_arguments, error_from_object, string
from protocols.unified import ToolIds
from protocols.unified_stream import (
    Error,
    Finish,
    ReasoningDelta,
    ReasoningEnd,
    Start,
    StreamEvent,
    TextDelta,
    ToolArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
)


class GeminiDecoder(Decoder):
    """Gemini chunks -> unified events. Calls arrive whole; usage is a cumulative snapshot on each chunk."""

    def __init__(self, ids: ToolIds | None = None) -> None:
        self._ids = ids or ToolIds()
        self._began = False
        self._calls = 0
        self._done = False

    def feed(self, event: Event) -> list[StreamEvent]:
        if event.data is None or self._done:
            return []
        chunk = load_object(event.data)
        if chunk is None:
            return []
        if isinstance(chunk.get("error"), dict):
            self._done = True
            return [error_from_object(chunk["error"])]
        out: list[StreamEvent] = []
        if not self._began:
            self._began = True
            out.append(Start(string(get_field(chunk, "responseId")), string(get_field(chunk, "modelVersion"))))
        candidates = chunk.get("candidates") or ()
        candidate = next((c for c in candidates if c.get("index", 0) == 0), None)  # Lossy: the first only.
        if candidate is not None:
            for part in (candidate.get("content") or {}).get("parts") or ():
                self._part(part, out)
        usage = get_field(chunk, "usageMetadata")
        if usage:
            out.append(UsageUpdate(usage_to_ir(usage)))
        finish = get_field(candidate, "finishReason") if candidate is not None else None
        if (problem := broken(finish)) is not None:
            self._done = True
            out.append(Error(BROKEN_STATUS, problem))
        elif finish or (not candidates and (get_field(chunk, "promptFeedback") or {}).get("blockReason")):
            # Lossy: a chunk after the one with finishReason (reported of early models) is not translated.
            self._done = True
            out.append(Finish(finish_of(chunk)))
        return out

    def _part(self, part: dict, out: list[StreamEvent]) -> None:
        call = get_field(part, "functionCall")
        signature = get_field(part, "thoughtSignature")
        if call is not None:
            index, self._calls = self._calls, self._calls + 1
            name = string(call.get("name"))
            args = call.get("args") or {}
            call_id = self._ids.issue(string(call.get("id")), name, args, index)
            out += [ToolCallStart(index, call_id, name, signature, NAME if signature else None),
                    ToolArgumentsDelta(index, dump_arguments(args)), ToolCallEnd(index)]
        elif part.get("thought"):
            if string(part.get("text")):
                out.append(ReasoningDelta(part["text"]))
            if signature:
                out.append(ReasoningEnd(signature, NAME))
        elif string(part.get("text")):
            out.append(TextDelta(part["text"]))  # Lossy: a signature on a text part is dropped.

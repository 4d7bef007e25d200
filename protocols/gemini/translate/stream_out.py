"""Unified stream events written as the Gemini generateContent client's stream (the translator's encoder)."""

from __future__ import annotations

from protocols.errors import gemini_error
from protocols.gemini.stream import ROLE_MODEL
from protocols.gemini.translate.answer_out import usage_from_ir
from protocols.gemini.translate.request_out import call_part
from protocols.gemini.translate.vocabulary import FINISH_STOP_NAME, FINISH_TO, NAME
from protocols.sse import dumps
from protocols.translate.base import Encoder
from protocols.unified import FINISH_LENGTH, Request, ToolCall, Usage, client_finish
from protocols.unified_stream import ReasoningEnd, Start, ToolCallStart, whole_arguments

CRLF = b"\r\n"


class GeminiEncoder(Encoder):
    """Unified events -> Gemini chunks (`data:` lines only, CRLF like Google). Tool calls go out whole once their
    arguments are complete; finishReason and the final usage ride on the last chunk."""

    def __init__(self, request: Request, created: int = 0) -> None:
        self._model = request.model
        self._id = ""
        self._calls: dict[int, ToolCall] = {}
        self._sent = False

    def _chunk(self, parts: list[dict] | None, finish: str | None = None) -> bytes:
        candidate: dict = {"content": {"role": ROLE_MODEL, "parts": parts} if parts else {"role": ROLE_MODEL},
                           "index": 0}
        if finish:
            candidate["finishReason"] = finish
        chunk: dict = {"candidates": [candidate]}
        if self.usage is not None or finish:
            chunk["usageMetadata"] = usage_from_ir(self.usage or Usage())
        chunk["modelVersion"] = self._model
        if self._id:
            chunk["responseId"] = self._id
        return b"data: " + dumps(chunk) + CRLF + CRLF

    def start(self, event: Start) -> bytes:
        self._id = event.id
        self._model = event.model or self._model
        return b""

    def text(self, text: str) -> bytes:
        return self._chunk([{"text": text}])

    def reasoning(self, text: str) -> bytes:
        return self._chunk([{"text": text, "thought": True}])

    def reasoning_end(self, event: ReasoningEnd) -> bytes:
        if event.origin == NAME and event.signature:
            return self._chunk([{"text": "", "thought": True, "thoughtSignature": event.signature}])
        return b""  # Lossy: another vendor's signature is not Gemini's.

    def tool_start(self, event: ToolCallStart) -> bytes:
        self._calls[event.index] = ToolCall(event.id, event.name, "", event.signature, event.origin)
        return b""

    def tool_arguments(self, index: int, fragment: str) -> bytes:
        call = self._calls.get(index)
        if call is not None:
            call.arguments += fragment  # Gemini has no argument fragments: a call goes out whole
        return b""

    def tool_end(self, index: int) -> bytes:
        call = self._calls.pop(index, None)
        return self._chunk([self._call(call)]) if call is not None else b""

    def _call(self, call: ToolCall) -> dict:
        self._sent = True
        part = call_part(call)
        part["functionCall"]["id"] = call.id
        return part

    def finish(self, reason: str, stop_sequence: str | None, truncated: bool) -> bytes:
        # A call cut mid-arguments is never sent: no agent runs half-written arguments.
        calls = [self._call(c) for _, c in sorted(self._calls.items()) if not truncated or whole_arguments(c.arguments)]
        self._calls = {}
        finish = FINISH_LENGTH if truncated else client_finish(reason, self._sent)
        return self._chunk(calls, FINISH_TO.get(finish, FINISH_STOP_NAME))

    def error(self, message: str, status: int, kind: str | None) -> bytes:
        return b"data: " + dumps({"error": gemini_error(status, message)}) + CRLF + CRLF

"""Unified stream events written as the OpenAI Chat Completions client's stream (the translator's encoder)."""

from __future__ import annotations

from protocols.errors import openai_error
from protocols.openai_chat.stream import CHUNK_OBJECT, DONE_EVENT, TOOL_TYPE_FUNCTION
from protocols.openai_chat.translate.answer_out import usage_from_ir
from protocols.openai_chat.translate.vocabulary import FINISH_TO, REASONING_KEY, SYNTHETIC_ID
from protocols.sse import dumps
from protocols.translate.base import Encoder
from protocols.unified import FINISH_LENGTH, ROLE_ASSISTANT, Request, Usage, client_finish
from protocols.unified_stream import ReasoningEnd, Start, ToolCallStart


class ChatEncoder(Encoder):
    """Unified events -> Chat chunks: a role chunk, deltas (tool call id and name only in a call's first
    fragment), a finish chunk, the usage chunk if the client asked for it, `[DONE]`."""

    def __init__(self, request: Request, created: int = 0) -> None:
        self._request = request
        self._created = created
        self._began = False
        self._head = b""
        self._calls: set[int] = set()

    def _begin(self, id_: str = "", model: str = "", created: int = 0) -> bytes:
        self._began = True
        self._id = id_ or SYNTHETIC_ID
        self._model = model or self._request.model
        self._created = created or self._created
        head = {"id": self._id, "object": CHUNK_OBJECT, "created": self._created, "model": self._model}
        self._head = b"data: " + dumps(head)[:-1] + b',"choices":[{"index":0,"delta":'
        return self._chunk({"role": ROLE_ASSISTANT, "content": ""})

    def _chunk(self, delta: dict, finish: str | None = None) -> bytes:
        lead = b"" if self._began else self._begin()
        reason = b'"' + finish.encode() + b'"' if finish else b"null"
        return lead + self._head + dumps(delta) + b',"logprobs":null,"finish_reason":' + reason + b"}]}\n\n"

    def start(self, event: Start) -> bytes:
        return b"" if self._began else self._begin(event.id, event.model, event.created)

    def text(self, text: str) -> bytes:
        return self._chunk({"content": text})

    def reasoning(self, text: str) -> bytes:
        return self._chunk({REASONING_KEY: text})

    def reasoning_end(self, event: ReasoningEnd) -> bytes:
        return b""  # Lossy: Chat has no place for reasoning signatures.

    def tool_start(self, event: ToolCallStart) -> bytes:
        # Lossy: a custom tool's call streams as a function call of {"input": ...}: the SDK's chunk types
        # have no custom call (non-stream answers carry one).
        self._calls.add(event.index)
        call = {"index": event.index, "id": event.id, "type": TOOL_TYPE_FUNCTION,
                "function": {"name": event.name, "arguments": ""}}
        return self._chunk({"tool_calls": [call]})

    def tool_arguments(self, index: int, fragment: str) -> bytes:
        return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})

    def tool_end(self, index: int) -> bytes:
        return b""

    def finish(self, reason: str, stop_sequence: str | None, truncated: bool) -> bytes:
        reason = FINISH_LENGTH if truncated else client_finish(reason, bool(self._calls))
        out = self._chunk({}, FINISH_TO.get(reason, "stop"))
        if self._request.include_usage:
            head = {"id": self._id, "object": CHUNK_OBJECT, "created": self._created, "model": self._model,
                    "choices": [], "usage": usage_from_ir(self.usage or Usage())}
            out += b"data: " + dumps(head) + b"\n\n"
        return out + DONE_EVENT

    def error(self, message: str, status: int, kind: str | None) -> bytes:
        return b"data: " + dumps({"error": openai_error(status, message, kind)}) + b"\n\n"

"""An upstream's OpenAI Chat Completions stream read into unified stream events (the translator's decoder)."""

from __future__ import annotations

from protocols.events import Event
from protocols.openai_chat.chunks import CHOICES_MEMBER, constant_head, plain_text, templated_text, text_template
from protocols.openai_chat.stream import DONE, REASONING_KEYS
from protocols.openai_chat.translate.vocabulary import FINISH_FROM
from protocols.openai_chat.usage import usage_to_ir
from protocols.sse import load_object
from protocols.translate.base import Decoder
from protocols.translate.common import error_from_object, string
from protocols.unified import FINISH_STOP, ToolIds
from protocols.unified_stream import (
    Error,
    Finish,
    ReasoningDelta,
    Start,
    StreamEvent,
    TextDelta,
    ToolArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
)

TEMPLATE_TRIES = 3  # plain-text chunks a stream's text template is learnt from before giving up on it


class ChatDecoder(Decoder):
    """Chat chunks -> unified events. The finish waits for `[DONE]`, so the usage chunk before it is included."""

    def __init__(self, ids: ToolIds | None = None) -> None:
        self._ids = ids or ToolIds()
        self._began = False
        self._id = ""
        self._calls: dict[int, int] = {}  # Chat tool call index -> unified index
        self._open: list[int] = []
        self._finish: str | None = None
        self._done = False
        self._head = ""  # see chat_chunks.constant_head
        self._template: tuple[str, str] | None = None  # see chat_chunks.text_template
        self._learning = TEMPLATE_TRIES

    def feed(self, event: Event) -> list[StreamEvent]:
        data = event.data
        if data is None or self._done:
            return []
        template = self._template
        if template is not None:
            text = templated_text(data, template)
            if text is not None:
                return [TextDelta(text)] if text else []
        if data.startswith(DONE):
            return self._end(self._finish or FINISH_STOP)
        head = self._head
        if head and data.startswith(head) and data.startswith(CHOICES_MEMBER, len(head)):
            chunk = load_object("{" + data[len(head):])  # the head's members were read in the first chunk
        else:
            chunk = load_object(data)
        if chunk is None:
            return []
        if self._began:
            text = plain_text(chunk)
            if text is not None:
                if template is None and self._learning:
                    self._learning -= 1
                    self._template = text_template(data, text)
                return [TextDelta(text)] if text else []
        out: list[StreamEvent] = []
        if chunk.get("error"):
            error = chunk["error"]
            self._done = True
            return [error_from_object(error) if isinstance(error, dict) else Error(500, str(error))]
        choices = chunk.get("choices") or ()
        if not self._began and (choices or chunk.get("usage")):
            self._began = True
            self._id = string(chunk.get("id"))
            created = chunk.get("created")
            out.append(Start(self._id, string(chunk.get("model")), created if isinstance(created, int) else 0))
            self._head = constant_head(data, chunk)
        for choice in choices:
            if choice.get("index", 0) == 0:  # Lossy: only the first of n choices is translated.
                self._choice(choice, out)
        if chunk.get("usage"):
            out.append(UsageUpdate(usage_to_ir(chunk["usage"])))
        return out

    def _choice(self, choice: dict, out: list[StreamEvent]) -> None:
        delta = choice.get("delta") or {}
        for key in REASONING_KEYS:
            if isinstance(delta.get(key), str) and delta[key]:
                out.append(ReasoningDelta(delta[key]))
        for key in ("content", "refusal"):  # Lossy: a refusal is told as plain text.
            if isinstance(delta.get(key), str) and delta[key]:
                out.append(TextDelta(delta[key]))
        for fragment in delta.get("tool_calls") or ():
            self._tool_fragment(fragment, out)
        if choice.get("finish_reason"):
            self._finish = FINISH_FROM.get(choice["finish_reason"], FINISH_STOP)
            out += [ToolCallEnd(index) for index in self._open]
            self._open = []

    def _tool_fragment(self, fragment: dict, out: list[StreamEvent]) -> None:
        function = fragment.get("function") or {}
        index = self._calls.get(fragment.get("index", 0))
        if index is None:
            index = self._calls[fragment.get("index", 0)] = len(self._calls)
            name = string(function.get("name"))
            out.append(ToolCallStart(index, self._ids.issue(string(fragment.get("id")), name, self._id, index), name))
            self._open.append(index)
        if string(function.get("arguments")):
            out.append(ToolArgumentsDelta(index, function["arguments"]))

    finished = property(lambda self: self._finish is not None)

    def close(self) -> list[StreamEvent]:
        """A stream that said its finish_reason but ended before `[DONE]` is complete all the same."""
        return self._end(self._finish) if self._finish is not None and not self._done else []

    def _end(self, finish: str) -> list[StreamEvent]:
        self._done = True
        out: list[StreamEvent] = [ToolCallEnd(index) for index in self._open]
        self._open = []
        return [*out, Finish(finish)]

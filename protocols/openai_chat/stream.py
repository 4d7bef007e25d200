"""OpenAI Chat Completions: `POST .../chat/completions`."""

from __future__ import annotations

from protocols.base import Aggregator, Protocol, Repairer, member, whole_json
from protocols.errors import OPENAI_TRUNCATED_CODE, TRUNCATED_MESSAGE, openai_error
from protocols.events import Event
from protocols.sse import COMMENT_HEARTBEAT, dumps, json_event, load_object

PATH_SUFFIX = "/chat/completions"
DONE = "[DONE]"
DONE_EVENT = b"data: [DONE]\n\n"

CHUNK_OBJECT = "chat.completion.chunk"
COMPLETION_OBJECT = "chat.completion"
ROLE_ASSISTANT = "assistant"
TOOL_TYPE_FUNCTION = "function"
SYNTHETIC_ID = "chatcmpl-rotator"

FINISH_STOP = "stop"
FINISH_LENGTH = "length"
FINISH_TOOL_CALLS = "tool_calls"
# An answer a content filter stopped (Azure OpenAI's): its end, not a cut, whether or not `[DONE]` follows (Azure's
# DeepSeek models send none); never ended for it, nor continued.
FINISH_CONTENT_FILTER = "content_filter"

NULL_FINISH = '"finish_reason":null'
TOOL_CALLS_MARK = '"tool_calls"'
ERROR_MARK = '"error"'
_NULL_FINISH, _TOOL_CALLS, _ERROR = (m.encode() for m in (NULL_FINISH, TOOL_CALLS_MARK, ERROR_MARK))

REASONING_KEYS = ("reasoning_content", "reasoning")
CONTENT_KEYS = ("content", "refusal", *REASONING_KEYS, "tool_calls")
HEAD_KEYS = ("id", "created", "model", "system_fingerprint", "service_tier")


def _choice_count(body: dict) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and n > 0 else 1


def counted_usage(pieces: int) -> dict:
    """A usage for an answer whose stream sent none: OpenAI streams about one token per chunk, so the chunks that
    carried content are the completion tokens; the prompt is unknown (0)."""
    return {"prompt_tokens": 0, "completion_tokens": pieces, "total_tokens": pieces}


class ChatRepairer(Repairer):
    """Tracks which choices have finished; ends a cut stream with `finish_reason: "length"` and `[DONE]`."""

    def __init__(self, body: dict) -> None:
        self._id: str | None = None
        self._created = 0
        self._model = body.get("model") or ""
        self._finish: dict[int, str | None] = dict.fromkeys(range(_choice_count(body)))
        self._tools: set[int] = set()
        self._single = _choice_count(body) == 1
        self._usage_asked = member(body, "stream_options").get("include_usage") is True
        self._usage_sent = False
        self._pieces = 0  # chunks that carried content, for the usage of an ending Rotator writes

    def feed(self, event: Event) -> bytes:
        data = event.data
        if data is None:
            return event.raw
        if self._plain_delta(data):
            self._pieces += 1
            return event.raw
        if data.startswith(DONE):
            return self._done() + event.raw
        chunk = load_object(data)
        if chunk is None:
            return event.raw
        if chunk.get("error"):
            self.started = self.complete = self.failed = True
            return event.raw
        if self._id is None and chunk.get("id"):
            self._id = chunk["id"]
            self._created = chunk.get("created") or 0
            self._model = chunk.get("model") or self._model
        if chunk.get("usage"):
            self._usage_sent = True
        for choice in chunk.get("choices") or ():  # (Azure's first chunk has none: its prompt's filter results)
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            if choice.get("finish_reason"):
                self._finish[index] = choice["finish_reason"]
                self.started = True
                if choice["finish_reason"] == FINISH_CONTENT_FILTER and not self._unfinished():
                    self.complete = True
            elif index not in self._finish:
                self._finish[index] = None
            if delta.get("tool_calls"):
                self._tools.add(index)
            if any(delta.get(key) for key in CONTENT_KEYS):
                self.started = True
                self._pieces += 1
        return event.raw

    def quiet(self, block: bytes) -> bool:
        # One `data:` line and its blank line (a CR anywhere could be a line end), of a plain delta.
        if (
            self.started
            and self._single
            and block.startswith(b"data: ")
            and block.find(b"\n") == len(block) - 2
            and block.endswith(b"\n\n")
            and block.find(b"\r") < 0  # (find, not `in`: protocols/sse.py says why)
            and block.find(_NULL_FINISH) >= 0
            and block.find(_TOOL_CALLS) < 0
            and block.find(_ERROR) < 0
        ):
            self._pieces += 1  # the one thing `feed` would have done with it
            return True
        return False

    def _plain_delta(self, data: str) -> bool:
        """A chunk that cannot change the state, recognised without parsing it (the common case, kept cheap).

        Once a single-choice stream has started, a chunk whose one choice says `"finish_reason":null` and that
        carries no tool call or error changes nothing. The markers cannot be faked by content: inside a JSON
        string their quotes would be escaped.
        """
        return (
            self.started
            and self._single
            and NULL_FINISH in data
            and TOOL_CALLS_MARK not in data
            and ERROR_MARK not in data
        )

    def _done(self) -> bytes:
        """At `[DONE]`: a finish_reason for every choice that lacks one, inferred from what it streamed."""
        self.started = self.complete = True
        return b"".join(
            self._finish_chunk(index, FINISH_TOOL_CALLS if index in self._tools else FINISH_STOP)
            for index in self._unfinished()
        )

    @property
    def finished(self) -> bool:
        return self.complete or not self._unfinished()

    def _unfinished(self) -> list[int]:
        return [index for index, reason in self._finish.items() if reason is None]

    def _finish_chunk(self, index: int, reason: str) -> bytes:
        self._finish[index] = reason
        chunk = {
            "id": self._id or SYNTHETIC_ID,
            "object": CHUNK_OBJECT,
            "created": self._created,
            "model": self._model,
            "choices": [{"index": index, "delta": {}, "finish_reason": reason}],
        }
        return json_event(chunk)

    def truncation_error(self) -> bytes:
        return self._error(TRUNCATED_MESSAGE, 500, OPENAI_TRUNCATED_CODE)

    def length_ending(self) -> bytes:
        finish = b"".join(self._finish_chunk(index, FINISH_LENGTH) for index in self._unfinished())
        return finish + self._usage_chunk() + DONE_EVENT

    def _usage_chunk(self) -> bytes:
        """The usage chunk the client asked for (`include_usage`), counted, unless the stream already sent one."""
        if not self._usage_asked or self._usage_sent:
            return b""
        self._usage_sent = True
        chunk: dict = {
            "id": self._id or SYNTHETIC_ID,
            "object": CHUNK_OBJECT,
            "created": self._created,
            "model": self._model,
            "choices": [],
            "usage": counted_usage(self._pieces),
        }
        return json_event(chunk)

    def error_event(self, message: str, status: int = 502) -> bytes:
        return self._error(message, status)

    def _error(self, message: str, status: int, code: str | None = None) -> bytes:
        self.complete = self.failed = True
        error = openai_error(status, message)
        if code:
            error["code"] = code
        return json_event({"error": error})


class _Choice:
    __slots__ = ("content", "refusal", "reasoning", "reasoning_key", "tools", "finish", "logprobs", "annotations")

    def __init__(self) -> None:
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.reasoning: list[str] = []
        self.reasoning_key = REASONING_KEYS[0]
        self.tools: dict[int, dict] = {}
        self.finish: str | None = None
        self.logprobs: list | None = None
        self.annotations: list = []

    def feed(self, choice: dict) -> None:
        delta = choice.get("delta") or {}
        if isinstance(delta.get("content"), str):
            self.content.append(delta["content"])
        if delta.get("refusal"):
            self.refusal.append(delta["refusal"])
        for key in REASONING_KEYS:
            if delta.get(key):
                self.reasoning.append(delta[key])
                self.reasoning_key = key
        for fragment in delta.get("tool_calls") or ():
            self._feed_tool(fragment)
        if isinstance(delta.get("annotations"), list):
            self.annotations.extend(delta["annotations"])
        if choice.get("finish_reason"):
            self.finish = choice["finish_reason"]
        logprobs = choice.get("logprobs")
        if logprobs and logprobs.get("content"):
            if self.logprobs is None:
                self.logprobs = []
            self.logprobs.extend(logprobs["content"])

    def _feed_tool(self, fragment: dict) -> None:
        call = self.tools.get(fragment.get("index", 0))
        if call is None:
            call = self.tools[fragment.get("index", 0)] = {"id": None, "name": None, "arguments": []}
        function = fragment.get("function") or {}
        call["id"] = call["id"] or fragment.get("id")
        call["name"] = call["name"] or function.get("name")
        if function.get("arguments"):
            call["arguments"].append(function["arguments"])

    def drop_cut_tool_call(self) -> None:
        """Leave out the tool call a cut stopped in (its arguments are not whole JSON): no agent runs half-written
        arguments. Calls stream one after another, so only the last can be cut."""
        if self.tools and not whole_json("".join(self.tools[max(self.tools)]["arguments"])):
            del self.tools[max(self.tools)]

    def message(self) -> dict:
        content = "".join(self.content) if self.content else None
        if not content and (self.tools or self.refusal):
            content = None  # what a non-stream answer says: the stream's role chunk carries an empty content
        message = {
            "role": ROLE_ASSISTANT,
            "content": content,
            "refusal": "".join(self.refusal) if self.refusal else None,
            "annotations": self.annotations,
        }
        if self.reasoning:
            message[self.reasoning_key] = "".join(self.reasoning)
        if self.tools:
            message["tool_calls"] = [
                {
                    "id": call["id"],
                    "type": TOOL_TYPE_FUNCTION,
                    "function": {"name": call["name"], "arguments": "".join(call["arguments"])},
                }
                for _, call in sorted(self.tools.items())
            ]
        return message


class ChatAggregator(Aggregator):
    """Folds chunks into a `chat.completion`: text, refusal, reasoning, tool calls, the last usage (or one counted
    from the chunks)."""

    def __init__(self, body: dict) -> None:
        self._head: dict = {"id": SYNTHETIC_ID, "created": 0, "model": body.get("model") or ""}
        self._choices: dict[int, _Choice] = {}
        self._usage: dict | None = None
        self._pieces = 0  # chunks that carried content, for a usage the stream did not send
        self._done = False

    @property
    def truncated(self) -> bool:
        if self._done or self.error is not None:
            return False
        finished = [c.finish for c in self._choices.values()]
        return not (finished and FINISH_CONTENT_FILTER in finished and all(finished))

    def feed(self, event: Event) -> None:
        data = event.data
        if data is None:
            return
        if data.startswith(DONE):
            self._done = True
            return
        chunk = load_object(data)
        if chunk is None:
            return
        if chunk.get("error"):
            error = chunk["error"]
            self.error = error if isinstance(error, dict) else {"message": str(error)}
            return
        for key in HEAD_KEYS:
            if chunk.get(key):
                self._head[key] = chunk[key]
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _Choice()
            state.feed(choice)
            delta = choice.get("delta") or {}
            self._pieces += any(delta.get(key) for key in CONTENT_KEYS)

    def result(self) -> dict:
        choices = [self._result_choice(index, state) for index, state in sorted(self._choices.items())]
        if not choices:
            choices = [self._result_choice(0, _Choice())]
        body = {"object": COMPLETION_OBJECT, **self._head, "choices": choices}
        # A non-stream answer always has a usage; a stream cut before its usage chunk (or from an upstream that
        # ignores include_usage) has none.
        body["usage"] = self._usage or counted_usage(self._pieces)
        return body

    def _result_choice(self, index: int, state: _Choice) -> dict:
        if state.finish:
            finish = state.finish
        elif self.truncated:
            finish = FINISH_LENGTH
            state.drop_cut_tool_call()
        else:
            finish = FINISH_TOOL_CALLS if state.tools else FINISH_STOP
        logprobs = {"content": state.logprobs} if state.logprobs else None
        return {"index": index, "message": state.message(), "finish_reason": finish, "logprobs": logprobs}


class OpenAIChat(Protocol):
    name = "openai_chat"
    family = "openai"
    heartbeat = COMMENT_HEARTBEAT
    path_suffix = PATH_SUFFIX
    repairer_class = ChatRepairer
    aggregator_class = ChatAggregator

    def as_stream(self, path: str, query: str, body: dict) -> tuple[str, str, dict]:
        options = body.get("stream_options")
        options = {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
        return path, query, {**body, "stream": True, "stream_options": options}

    def error_body(self, status: int, message: str) -> bytes:
        return dumps({"error": openai_error(status, message)})

    def makes_state(self, body: dict) -> bool:
        """A completion stored for the dashboard's evals and distillation (`store: true`; the default is false)."""
        return body.get("store") is True

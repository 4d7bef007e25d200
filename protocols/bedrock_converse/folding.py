"""A ConverseStream folded into the Converse answer it stands for (for a client that asked for no stream)."""

from __future__ import annotations

import json

from protocols.base import Aggregator, integer, member, whole_json
from protocols.bedrock_converse.events import (
    BLOCK_INDEX,
    CONTENT_BLOCK_DELTA,
    CONTENT_BLOCK_START,
    CONTENT_BLOCK_STOP,
    MESSAGE_STOP,
    METADATA,
    REASONING,
    REASONING_TEXT,
    REDACTED,
    ROLE_ASSISTANT,
    SIGNATURE,
    STOP_MAX_TOKENS,
    TEXT,
    TOOL_USE,
    converse_usage,
)
from protocols.events import Event
from protocols.eventstream import is_failure
from protocols.sse import load_object


class _Block:
    __slots__ = ("tool", "text", "input", "reasoning", "signature", "redacted", "stopped")

    def __init__(self, tool: dict | None = None) -> None:
        self.tool = tool  # a tool call's {toolUseId, name}
        self.text: list[str] = []
        self.input: list[str] = []
        self.reasoning: list[str] = []
        self.signature: str | None = None
        self.redacted: str | None = None
        self.stopped = False

    def feed(self, delta: dict) -> None:
        if isinstance(delta.get(TEXT), str):
            self.text.append(delta[TEXT])
        elif TOOL_USE in delta:
            fragment = member(delta, TOOL_USE).get("input")
            self.input.append(fragment if isinstance(fragment, str) else "")
        elif REASONING in delta:
            reasoning = member(delta, REASONING)
            if isinstance(reasoning.get(TEXT), str):
                self.reasoning.append(reasoning[TEXT])
            if isinstance(reasoning.get(SIGNATURE), str):
                self.signature = reasoning[SIGNATURE]
            if isinstance(reasoning.get(REDACTED), str):
                self.redacted = reasoning[REDACTED]

    def cut_call(self) -> bool:
        """A tool call cut before its input was whole: no agent runs half-written input."""
        return self.tool is not None and not self.stopped and not whole_json("".join(self.input) or "{}")

    def result(self) -> dict:
        if self.tool is not None:
            text = "".join(self.input)
            try:
                arguments = json.loads(text) if text.strip() else {}
            except ValueError:
                arguments = {}
            return {TOOL_USE: {**self.tool, "input": arguments}}
        if self.redacted is not None:
            return {REASONING: {REDACTED: self.redacted}}
        if self.reasoning or self.signature is not None:
            reasoning: dict = {TEXT: "".join(self.reasoning)}
            if self.signature is not None:
                reasoning[SIGNATURE] = self.signature
            return {REASONING: {REASONING_TEXT: reasoning}}
        return {TEXT: "".join(self.text)}


class ConverseAggregator(Aggregator):
    """Folds events into `{output: {message}, stopReason, usage, metrics}`. An exception before any content is the
    answer's `error`; one after content cut it short (it then ends as any cut stream does: stop reason max_tokens)."""

    def __init__(self, body: dict) -> None:
        self._blocks: dict[int, _Block] = {}
        self._stop: dict = {}
        self._metadata: dict = {}

    @property
    def truncated(self) -> bool:
        return not self._stop and self.error is None

    def feed(self, event: Event) -> None:
        kind = event.event
        payload = load_object(event.data or "") or {}
        if is_failure(event):
            if not self._blocks and not self._stop:
                message = payload.get("message")
                self.error = {"type": kind, "message": message if isinstance(message, str) else ""}
            return
        if kind == CONTENT_BLOCK_DELTA:
            self._block(payload).feed(member(payload, "delta"))
        elif kind == CONTENT_BLOCK_START:
            tool = member(member(payload, "start"), TOOL_USE)
            index = integer(payload, BLOCK_INDEX)
            self._blocks[index] = _Block({k: tool[k] for k in ("toolUseId", "name") if k in tool} if tool else None)
        elif kind == CONTENT_BLOCK_STOP:
            self._block(payload).stopped = True
        elif kind == MESSAGE_STOP:
            self._stop = payload
        elif kind == METADATA:
            self._metadata = payload

    def _block(self, payload: dict) -> _Block:
        index = integer(payload, BLOCK_INDEX)
        block = self._blocks.get(index)
        if block is None:
            block = self._blocks[index] = _Block()
        return block

    def result(self) -> dict:
        truncated = self.truncated
        blocks = [b for _, b in sorted(self._blocks.items()) if not (truncated and b.cut_call())]
        answer: dict = {
            "output": {"message": {"role": ROLE_ASSISTANT, "content": [b.result() for b in blocks]}},
            "stopReason": STOP_MAX_TOKENS if truncated else self._stop.get("stopReason") or STOP_MAX_TOKENS,
            "usage": converse_usage(member(self._metadata, "usage")),
            "metrics": member(self._metadata, "metrics") or {"latencyMs": 0},
        }
        extra = self._stop.get("additionalModelResponseFields")
        if extra is not None:
            answer["additionalModelResponseFields"] = extra
        return answer

"""`reasoning_field: reasoning`: the name the host gives Chat reasoning text, `reasoning` or `reasoning_content`.

Chat Completions has no official reasoning field; DeepSeek and older vLLM say `reasoning_content`, newer vLLM and
OpenRouter `reasoning`. Assistant messages of the request carry it under the host's name; the answer's deltas
and messages are given back under the other one, the name the client reads.
"""

from __future__ import annotations

from typing import Literal

from rewrite.adapters.registry import Adapter, UpstreamRequest, register

FIELDS = ("reasoning_content", "reasoning")


def _move(message: dict, source: str, target: str) -> None:
    if source in message and target not in message:
        message[target] = message.pop(source)


@register
class ReasoningField(Adapter):
    name = "reasoning_field"
    Options = Literal["reasoning_content", "reasoning"]
    touches_answers = True

    def __init__(self, options: str) -> None:
        super().__init__(options)
        self.host = options
        self.client = FIELDS[1 - FIELDS.index(options)]

    def request(self, req: UpstreamRequest) -> None:
        messages = req.body.get("messages")
        if not isinstance(messages, list):
            return
        for message in messages:
            if isinstance(message, dict):
                _move(message, self.client, self.host)

    def answer_event(self, data: dict) -> None:
        self._choices(data, "delta")

    def answer_body(self, body: dict) -> None:
        self._choices(body, "message")

    def _choices(self, data: dict, part: str) -> None:
        choices = data.get("choices")
        if not isinstance(choices, list):
            return
        for choice in choices:
            message = choice.get(part) if isinstance(choice, dict) else None
            if isinstance(message, dict):
                _move(message, self.host, self.client)

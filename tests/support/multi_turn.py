"""Multi-turn conversations through the official SDKs, each turn sending the whole history again (as agents do),
with what the vendor said of its prompt cache on every turn.

    convo = Conversation("anthropic", make_client("anthropic"))     # through Rotator (its env applied)
    turn = convo.ask("Read the file.")                              # -> Turn(text, input, cache_read, cache_write)
    assert convo.turns[-1].cache_read == convo.turns[-2].input

Anthropic's requests mark their last block with `cache_control` (its cache is opt-in: a marker that moves to the
newest message every turn, as Claude Code does); the others are cached by the vendor unasked. Responses can chain
by `previous_response_id` (`chained=True`, stored by the vendor) or resend its output items (with
`include=["reasoning.encrypted_content"]`, `store: false`, as Codex does: `stateless=True`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.genai import types as gtypes

from tests.support.clients import MODELS

SYSTEM = "You are a careful coding agent. " + " ".join(f"Rule {i}: read before you write." for i in range(120))


@dataclass
class Turn:
    text: str
    input: int  # the prompt's tokens, cached or not
    cache_read: int
    cache_write: int  # (Anthropic only: the others report none)
    raw: Any = None


@dataclass
class Conversation:
    protocol: str
    client: Any
    system: str = SYSTEM
    chained: bool = False  # Responses: previous_response_id and only the new input
    stateless: bool = False  # Responses: store false, encrypted reasoning resent
    history: list = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    last_id: str | None = None

    def ask(self, question: str) -> Turn:
        turn = getattr(self, f"_{self.protocol}")(question)
        self.turns.append(turn)
        return turn

    def _chat(self, question: str) -> Turn:
        self.history.append({"role": "user", "content": question})
        messages = [{"role": "system", "content": self.system}, *self.history]
        completion = self.client.chat.completions.create(model=MODELS["chat"], messages=messages)
        text = completion.choices[0].message.content or ""
        self.history.append({"role": "assistant", "content": text})
        usage = completion.usage
        details = usage.prompt_tokens_details
        return Turn(text, usage.prompt_tokens, details.cached_tokens or 0 if details else 0, 0, completion)

    def _responses(self, question: str) -> Turn:
        asked = {"role": "user", "content": question}
        extra: dict = {}
        if self.chained and self.last_id:
            extra["previous_response_id"] = self.last_id
            items: list = [asked]
        else:
            self.history.append(asked)
            items = list(self.history)
        if self.stateless:
            extra.update(store=False, include=["reasoning.encrypted_content"])
        response = self.client.responses.create(model=MODELS["responses"], instructions=self.system, input=items,
                                                **extra)
        self.last_id = response.id
        if not self.chained:
            self.history.extend(item.model_dump(exclude_none=True) for item in response.output)
        usage = response.usage
        details = usage.input_tokens_details
        return Turn(response.output_text, usage.input_tokens, details.cached_tokens or 0 if details else 0, 0,
                    response)

    def _anthropic(self, question: str) -> Turn:
        for message in self.history:  # the marker moves to the newest message
            for block in message["content"]:
                block.pop("cache_control", None)
        self.history.append({"role": "user", "content": [
            {"type": "text", "text": question, "cache_control": {"type": "ephemeral"}}]})
        message = self.client.messages.create(model=MODELS["anthropic"], max_tokens=256, system=self.system,
                                              messages=self.history)
        text = "".join(b.text for b in message.content if b.type == "text")
        self.history.append({"role": "assistant", "content": [{"type": "text", "text": text}]})
        u = message.usage
        read, write = u.cache_read_input_tokens or 0, u.cache_creation_input_tokens or 0
        return Turn(text, u.input_tokens + read + write, read, write, message)

    def _gemini(self, question: str) -> Turn:
        self.history.append(gtypes.Content(role="user", parts=[gtypes.Part(text=question)]))
        config = gtypes.GenerateContentConfig(system_instruction=self.system)
        response = self.client.models.generate_content(model=MODELS["gemini"], contents=self.history, config=config)
        text = response.text or ""
        self.history.append(gtypes.Content(role="model", parts=[gtypes.Part(text=text)]))
        usage = response.usage_metadata
        return Turn(text, usage.prompt_token_count, usage.cached_content_token_count or 0, 0, response)

"""OpenAI Chat Completions: what a cut stream delivered, the request for its continuation, the splice that keeps one
completion for the client (resume-notes §4), and the holder that sends a tool call whole or not at all.

The splice: every chunk under the first attempt's `id`, `created`, `model` and `system_fingerprint`; the
continuation's role-only delta dropped, and its reasoning before the seam (as the other protocols'); its tool call
indexes after the client's; text through the seam, every chunk held until the seam has decided (a continuation that
started over leaves no trace); its usage chunk counts the first attempt's prompt (when it sent one) and both
attempts' output (the first's as its stream last reported it where a server counts on every chunk, else counted
from its chunks: its stream was cut before its usage), the same count its continuation's cap was lowered by.

A partial answer with tool calls is asked for in words (each call needs its result after it); so is one whose request
asked for JSON (`response_format`), which is not continued at all once its JSON began (protocols/resume/asking.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from protocols.base import count, member, whole_json
from protocols.capabilities import Capabilities
from protocols.events import Event
from protocols.openai_chat import stream as S
from protocols.resume import Delivered, Method, Seam, SeamSplicer
from protocols.resume.asking import INSTRUCTION, NOT_RUN, STRUCTURED, OutputCap, json_begun, prefill_text, spent
from protocols.resume.kept import KeptEvents, json_block
from protocols.sse import SSEParser, load_object

ROLE_USER = "user"
ROLE_TOOL = "tool"
TOOL_CALLS = b'"tool_calls"'
JSON_FORMATS = ("json_schema", "json_object")


@dataclass(frozen=True, slots=True)
class ChatDelivered(Delivered):
    tool_calls: tuple[dict, ...] = ()  # the calls the partial answer completed, as a request carries them

    def carried(self) -> tuple[dict, ...]:
        return self.tool_calls


class ChatHolder:
    """Holds a tool call's chunks (and whatever follows them) until the call is complete: the next call begins,
    or a chunk carries text, a finish reason or `[DONE]`."""

    marker: ClassVar[bytes] = TOOL_CALLS

    def __init__(self) -> None:
        self.holding = False
        self._held: list[bytes] = []
        self._index: int | None = None  # the call being held

    def feed(self, out: bytes) -> bytes:
        if not self.holding and self.marker not in out:
            return out
        parser = SSEParser()
        sent: list[bytes] = []
        for event in parser.feed(out) + parser.close():
            index, ends = _tool_index(event)
            if self.holding and (ends or (index is not None and index != self._index)):
                sent += self._held
                self._held, self.holding = [], False
            if index is not None and not ends:
                self.holding, self._index = True, index
            (self._held if self.holding else sent).append(event.raw)
        return b"".join(sent)


class ChatResumer:
    name = "openai_chat"
    output_cap = OutputCap((("max_completion_tokens",), ("max_tokens",)))  # (reasoning models': the first)

    holder = ChatHolder

    def observer(self, body: dict) -> ChatObserver:
        return ChatObserver(body)

    def prefills(self, body: dict, delivered: Delivered) -> bool:
        return not delivered.carried() and not structured(body)

    def continuation_body(self, body: dict, delivered: Delivered, method: Method, caps: Capabilities) -> dict:
        messages = list(body.get("messages") or [])
        calls = list(delivered.carried())
        if method == "prefill":
            text = prefill_text(delivered.text, caps)
            last: dict = {"role": S.ROLE_ASSISTANT, "content": text}
            if caps.prefill_marker:
                last[caps.prefill_marker] = True
            messages += [last] if text else []
        else:
            if delivered.text or calls:
                said: dict = {"role": S.ROLE_ASSISTANT, "content": delivered.text or None}
                messages.append({**said, "tool_calls": calls} if calls else said)
            messages += [{"role": ROLE_TOOL, "tool_call_id": call["id"], "content": NOT_RUN} for call in calls]
            messages.append({"role": ROLE_USER, "content": INSTRUCTION})
        return {**body, "messages": messages, "stream": True}


def structured(body: dict) -> bool:
    """Whether the request constrains the answer to JSON (a schema, or JSON mode)."""
    return member(body, "response_format").get("type") in JSON_FORMATS


class ChatObserver:
    def __init__(self, body: dict) -> None:
        self._body = body
        self._kept = KeptEvents()
        self.feed = self._kept.feed
        self.quiet = self._kept.quiet

    def _read(self) -> tuple[S._Choice, dict, int, bool, int]:
        """Choice 0 as the client has it, the first chunk's head, the chunks that carried content, whether another
        choice was seen, and the output tokens the stream last reported (0: none; a server that counts on every
        chunk, as vLLM's `continuous_usage_stats`, reports them before the end)."""
        choice, head, pieces, others, reported = S._Choice(), {}, 0, False, 0
        for payload in self._kept.payloads():
            if isinstance(payload.get("usage"), dict):
                reported = count(payload["usage"], "completion_tokens")
            for key in S.HEAD_KEYS:
                if payload.get(key) and key not in head:
                    head[key] = payload[key]
            for given in payload.get("choices") or ():
                if given.get("index", 0) != 0:
                    others = True
                    continue
                choice.feed(given)
                pieces += any((given.get("delta") or {}).get(key) for key in S.CONTENT_KEYS)
        return choice, head, pieces, others, reported

    def delivered(self) -> ChatDelivered:
        choice, _, pieces, others, reported = self._read()
        text = "".join(choice.content)
        arguments = [piece for call in choice.tools.values() for piece in call["arguments"]]
        output = spent(reported, pieces, "".join([text, *choice.refusal, *choice.reasoning, *arguments]))
        why_not = ""
        if others or S._choice_count(self._body) > 1:
            why_not = "several choices"
        elif choice.refusal:
            why_not = "cut inside a refusal"
        elif choice.reasoning and not text and not choice.tools:
            why_not = "cut inside reasoning"
        elif choice.tools and not whole_json("".join(choice.tools[max(choice.tools)]["arguments"])):
            why_not = "cut inside a tool call"
        elif json_begun(structured(self._body), text):
            why_not = STRUCTURED
        if why_not:
            return ChatDelivered(text, False, why_not, output)
        calls = tuple(call for call in choice.message().get("tool_calls") or ())
        return ChatDelivered(text, True, output_tokens=output, tool_calls=calls)

    def splicer(self, seam: Seam) -> ChatSplicer:
        choice, head, pieces, _, reported = self._read()
        return ChatSplicer(head, seam, len(choice.tools), reported or pieces)


class ChatSplicer(SeamSplicer):
    def __init__(self, head: dict, seam: Seam, tool_offset: int, spent: int) -> None:
        super().__init__(seam)  # (the chunks it holds are without their text: that is in the seam)
        self._head = {key: head[key] for key in ("id", "created", "model", "system_fingerprint") if key in head}
        # (the first attempt's output: its stream's own count where it gave one, else a token a content chunk)
        self._tool_offset, self._spent = tool_offset, spent

    def feed(self, event: Event) -> list[Event]:
        data = event.data
        if self.failed or data is None:
            return []
        if data.startswith(S.DONE):
            out = self._flush()
            return [] if self.failed else [*out, event]
        chunk = load_object(data)
        if chunk is None:
            return []
        if chunk.get("error"):
            return [*self._flush(), json_block(chunk)]
        chunk = {**chunk, **self._head}
        if chunk.get("usage"):
            chunk["usage"] = self._usage(member(chunk, "usage"))
        choices = [self._placed(choice) for choice in chunk.get("choices") or () if choice.get("index", 0) == 0]
        text = choices[0]["delta"].pop("content", None) if choices else None
        finishing = bool(choices and choices[0].get("finish_reason"))
        chunk["choices"] = [c for c in choices if c["delta"] or c.get("finish_reason") or c.get("logprobs")]
        if isinstance(text, str) and text:
            return self._through_seam(chunk, text)
        if not self._seam.decided:
            if not finishing:
                self._pending.append(chunk)
                return []
            out = self._flush()
            return [] if self.failed else [*out, json_block(chunk)]
        return [json_block(chunk)] if chunk["choices"] or chunk.get("usage") else []

    def _placed(self, choice: dict) -> dict:
        """The choice with the client's tool call indexes, without the role the client already has, and without
        reasoning before the seam (the continuation thinking again about an answer already under way)."""
        left_out = ("role",) if self._seam.decided else ("role", *S.REASONING_KEYS)
        delta = {key: value for key, value in (choice.get("delta") or {}).items()
                 if key not in left_out and value is not None}
        if isinstance(delta.get("tool_calls"), list):
            delta["tool_calls"] = [{**call, "index": call.get("index", 0) + self._tool_offset}
                                   for call in delta["tool_calls"] if isinstance(call, dict)]
        return {**choice, "delta": delta}

    def _release(self, text: str) -> list[Event]:
        """The chunks held while the seam decided: the text it let through in the first, then the others'
        tool calls, finish reasons and usage as they came."""
        held, self._pending = self._pending, []
        out = [self._with_text(held[0], text)] if held and text else []
        return out + [json_block(chunk) for chunk in held if chunk["choices"] or chunk.get("usage")]

    def _passed(self, event: dict, text: str) -> list[Event]:
        return [self._with_text(event, text)]

    def _with_text(self, chunk: dict, text: str) -> Event:
        choices = chunk["choices"] or [{"index": 0, "delta": {}, "finish_reason": None}]
        first = {**choices[0], "delta": {**choices[0]["delta"], "content": text}}
        return json_block({**chunk, "choices": [first, *choices[1:]]})

    def _usage(self, later: dict) -> dict:
        output = self._spent + count(later, "completion_tokens")
        prompt = count(later, "prompt_tokens")
        return {**later, "prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output}


def _tool_index(event: Event) -> tuple[int | None, bool]:
    """The tool call a chunk carries a fragment of (None: none), and whether it ends the calls before it (text, a
    finish reason, `[DONE]`)."""
    data = event.data
    chunk = load_object(data) if data is not None and not data.startswith(S.DONE) else None
    if chunk is None:
        return None, data is not None
    index, ends = None, False
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        calls = delta.get("tool_calls")
        if isinstance(calls, list) and calls and isinstance(calls[0], dict):
            index = calls[-1].get("index", 0)
        if delta.get("content") or choice.get("finish_reason"):
            ends = True
    return index, ends


RESUMER = ChatResumer()

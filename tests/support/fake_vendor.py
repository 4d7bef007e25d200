"""A scriptable fake LLM vendor: OpenAI (Chat Completions, Responses), Anthropic Messages and Gemini on one port.

Plain HTTP/1.1 on 127.0.0.1, written on asyncio streams with h11 (keep-alive, chunked streaming, every event
flushed as it is produced). The bodies follow the vendors' wire formats closely enough for the official SDKs.

    vendor = FakeVendor().start()            # background thread with its own event loop
    vendor.script(Fault.stall_after_headers(5), Fault.ok())       # consumed in order, one per request
    vendor.script(Fault.status(429, headers={"retry-after": "1"}), key="sk-pool-1")  # only for that credential
    vendor.always(Fault.status(401), key="sk-client-placeholder")                  # every time, for that key
    ...
    vendor.requests[-1].credential, vendor.keys(), vendor.wait_for(2)
    vendor.organizations({"sk-pool-1": "org-a", "sk-pool-2": "org-b"})   # per-organization caches and state
    vendor.stop()

Which fault a request gets: the queue scripted for its credential, else the rule set with `always(key=...)`, else
the shared queue, else the shared `always(...)` rule, else `Fault.ok()` (the default answer). Faults chain:
`Fault.tool_call().cut_after(deltas=2, how="reset")`.

Event positions (`cut_after`, `stall_after`, `error_after`) count either SSE events as sent on the wire
(`events=n`, the first positional argument) or content deltas (`deltas=n`: text fragments and tool-argument
fragments), which reads the same for every protocol: `deltas=0` acts after the protocol's preamble
(`message_start`, `response.created`, ...) and before the first token; `deltas=2` after the second fragment.
A position past the end acts after the last event, before the HTTP body's own end.

Run standalone: `python -m tests.support.fake_vendor --port 8900` (control endpoints: `GET /_fake/requests`,
`POST /_fake/reset`, `POST /_fake/script` with `[["stall_after_headers", 5], ["ok"]]`).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import dataclasses
import fcntl
import json
import re
import socket
import ssl
import struct
import termios
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import h11

from tests.support import continuation
from tests.support.vendor_accounts import Organizations, Refused, Served

TEXT = "Hello from the fake vendor: one two three four five"
TOOL_NAME = "get_weather"
TOOL_ARGUMENTS = {"city": "Paris", "unit": "celsius"}
INPUT_TOKENS = 12

CHAT, RESPONSES, ANTHROPIC, GEMINI = "chat", "responses", "anthropic", "gemini"
GENERATION_PROTOCOLS = (CHAT, RESPONSES, ANTHROPIC, GEMINI)

OPENAI_MODELS = ["gpt-4o-mini", "gpt-4.1", "o4-mini"]
ANTHROPIC_MODELS = ["claude-haiku-4-5", "claude-opus-4-6"]
GEMINI_MODELS = ["gemini-2.5-flash", "gemini-2.5-pro"]

CUT_HOWS = ("clean", "eof", "reset")


def _queued(sock, which: int) -> int:
    """Bytes in one of `sock`'s kernel queues (0 where the kernel does not say): `termios.FIONREAD`, come in and
    not read yet; `termios.TIOCOUTQ`, sent and not acknowledged by the peer yet."""
    count = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), which, count)
    except OSError:
        return 0
    return count[0]


# ------------------------------------------------------------------------------------------------------------------
# Faults


@dataclass(frozen=True)
class At:
    """A position in a stream: after `n` SSE events, or after the event that carries the n-th content delta."""

    n: int
    unit: str = "events"  # or "deltas"


def _at(events: int | None, deltas: int | None) -> At:
    if (events is None) == (deltas is None):
        raise TypeError("give exactly one of events (positional) or deltas=")
    return At(events, "events") if events is not None else At(deltas, "deltas")  # type: ignore[arg-type]


class _chainable:
    """A method usable on the class (`Fault.cut_after(3)`, starting from the default) or on an instance (chaining)."""

    def __init__(self, fn: Callable[..., Fault]):
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __get__(self, obj: Fault | None, cls: type[Fault]) -> Callable[..., Fault]:
        target = obj if obj is not None else cls()

        def bound(*args: Any, **kwargs: Any) -> Fault:
            return self.fn(target, *args, **kwargs)

        bound.__doc__ = self.fn.__doc__
        return bound


@dataclass(frozen=True)
class Fault:
    """How the fake vendor answers one request. The default instance answers normally."""

    text: str = TEXT
    tool: tuple[str, str] | None = None  # (name, arguments as a JSON string)
    status_code: int | None = None
    error_body: Any = None  # dict (JSON), str or bytes; None: the protocol's own error body for the status
    headers: tuple[tuple[str, Any], ...] = ()  # a value may be a callable, see `_pairs`
    delay_headers: float = 0.0
    delay_first_event: float = 0.0
    cut: At | None = None
    cut_how: str = "clean"
    stall: At | None = None
    stall_seconds: float = 0.0
    error: At | None = None
    interval: float = 0.0
    force_stream: bool = False
    encoding: str | None = None  # "gzip"
    corrupt: At | None = None
    endless: At | None = None
    endless_size: int = 0
    hangs_up: bool = False
    drip: float = 0.0  # seconds between the bytes of a whole (error or non-generation) body, see `dripping`
    refused_stream_model: str | None = None  # "*": every model
    refused_param: str | None = None  # a sampling parameter the model does not support, see `refuse_param`
    thinking: tuple[str, str] | None = None  # (text, signature): signed reasoning, see `signed_thinking`
    counts: tuple[int, int, int] = (0, 0, 0)  # (cache read, cache write, reasoning) tokens reported, see `tokens`
    continues: bool = False  # a request asking for the rest of `text` gets the rest, see `continuing`
    overlap: int = 8  # characters of the partial answer said again by a continuation asked in words
    refuses_prefill: bool = False  # a request ending in the assistant's turn gets a 400, see `refusing_prefill`
    alternates: bool = False  # a request with two user turns in a row gets a 400, see `alternating`
    pieces: tuple[str, ...] = ()  # the text's deltas as given (else split_text's), see `in_pieces`
    after: str = ""  # text after the tool call (Chat and Gemini), see `tool_call`

    @_chainable
    def continuing(self, overlap: int = 8) -> Fault:
        """Answer a request that asks for the rest of `text` (tests/support/continuation.py) with the rest: exactly
        after a prefill, with `overlap` characters said again after Rotator's instruction; any other request with
        `text` as usual (so one fault can answer the cut request and its continuations)."""
        return dataclasses.replace(self, continues=True, overlap=overlap)

    @_chainable
    def refusing_prefill(self) -> Fault:
        """Refuse a request ending in the assistant's (model's) turn with the vendor's 400, as models without
        prefill do."""
        return dataclasses.replace(self, refuses_prefill=True)

    @_chainable
    def alternating(self) -> Fault:
        """Refuse a conversation with two user turns in a row with a 400, as a vendor whose chat template takes
        only alternating roles does."""
        return dataclasses.replace(self, alternates=True)

    @_chainable
    def in_pieces(self, *pieces: str) -> Fault:
        """Answer with the text these pieces make, one content delta each (e.g. ending in whitespace, or cut
        inside a word), instead of split_text's."""
        return dataclasses.replace(self, text="".join(pieces), pieces=tuple(p for p in pieces if p))

    @_chainable
    def ok(self, text: str | None = None) -> Fault:
        """Answer normally (optionally with another text)."""
        return self if text is None else dataclasses.replace(self, text=text, pieces=())

    @_chainable
    def status(self, code: int, body: Any = None, headers: dict[str, str] | None = None) -> Fault:
        """Answer with this HTTP status; `body` defaults to the protocol's error JSON. Headers e.g. retry-after."""
        return dataclasses.replace(self, status_code=code, error_body=body, headers=self.headers + _pairs(headers))

    @_chainable
    def with_headers(self, headers: dict[str, Any]) -> Fault:
        """Extra response headers (on any answer)."""
        return dataclasses.replace(self, headers=self.headers + _pairs(headers))

    @_chainable
    def stall_before_headers(self, seconds: float) -> Fault:
        """Say nothing for `seconds`, then answer."""
        return dataclasses.replace(self, delay_headers=seconds)

    @_chainable
    def stall_after_headers(self, seconds: float) -> Fault:
        """Send 200 and the headers, then stay silent for `seconds` before the first event (then carry on)."""
        return dataclasses.replace(self, delay_first_event=seconds)

    @_chainable
    def cut_after(self, events: int | None = None, how: str = "clean", *, deltas: int | None = None) -> Fault:
        """Stop the stream at a position. how: "clean" (the HTTP body ends properly: only the protocol's completion
        signal is missing), "eof" (FIN without the chunked terminator), "reset" (TCP RST, SO_LINGER 0)."""
        if how not in CUT_HOWS:
            raise ValueError(f"how must be one of {CUT_HOWS}")
        return dataclasses.replace(self, cut=_at(events, deltas), cut_how=how)

    @_chainable
    def stall_after(self, events: int | None = None, seconds: float = 0.0, *, deltas: int | None = None) -> Fault:
        """Send up to a position, stay silent for `seconds`, then carry on (if the client is still there)."""
        return dataclasses.replace(self, stall=_at(events, deltas), stall_seconds=seconds)

    @_chainable
    def error_after(self, events: int | None = None, *, deltas: int | None = None) -> Fault:
        """Send up to a position, then the protocol's in-stream "overloaded" error event, and end the body."""
        return dataclasses.replace(self, error=_at(events, deltas))

    @_chainable
    def slow(self, interval: float) -> Fault:
        """One event every `interval` seconds; each JSON event carries `"x_sent_at": <time.time()>`."""
        return dataclasses.replace(self, interval=interval)

    @_chainable
    def tool_call(self, name: str = TOOL_NAME, arguments: dict | None = None, text: str | None = None,
                  after: str = "") -> Fault:
        """Answer with a tool call (arguments streamed in several fragments where the protocol does that),
        optionally preceded by `text`; in Chat and Gemini, whose streams tell that a call is complete only by what
        comes after it, optionally followed by the text `after`."""
        args = json.dumps(TOOL_ARGUMENTS if arguments is None else arguments)
        return dataclasses.replace(self, tool=(name, args), text=text or "", after=after)

    @_chainable
    def always_stream(self) -> Fault:
        """Answer a non-stream request with text/event-stream anyway (an upstream that always streams)."""
        return dataclasses.replace(self, force_stream=True)

    @_chainable
    def gzip(self) -> Fault:
        """Send the body with content-encoding gzip (a stream is flushed after every event), whatever was asked."""
        return dataclasses.replace(self, encoding="gzip")

    @_chainable
    def corrupt_after(self, events: int | None = None, *, deltas: int | None = None) -> Fault:
        """Gzip the body, and at a position send bytes no gzip decoder accepts, then end the body. A non-stream
        answer is corrupt from its first byte."""
        return dataclasses.replace(self, encoding="gzip", corrupt=_at(events, deltas))

    @_chainable
    def endless_line(self, events: int | None = None, size: int = 64 << 20, *, deltas: int | None = None) -> Fault:
        """At a position, start a `data:` line and send `size` more bytes of it with no line end, then stay silent
        (for a minute, or until the client leaves)."""
        return dataclasses.replace(self, endless=_at(events, deltas), endless_size=size)

    @_chainable
    def dripping(self, interval: float) -> Fault:
        """Send a whole body (an error status's, a non-generation path's) one byte every `interval` seconds, the
        first after the headers at once."""
        return dataclasses.replace(self, drip=interval)

    @_chainable
    def hang_up(self) -> Fault:
        """Close the connection without a byte of answer, as a server does whose keep-alive timer fires just as a
        request arrives on an idle connection."""
        return dataclasses.replace(self, hangs_up=True)

    @_chainable
    def signed_thinking(self, text: str = "Thinking it over.", signature: str = "ZmFrZS1zaWduYXR1cmU=") -> Fault:
        """Reason with opaque state, as thinking models do: Anthropic answers start with a thinking block carrying
        `text` and `signature`; Gemini's function call carries `signature` (base64, as the SDK checks) as its
        thoughtSignature."""
        return dataclasses.replace(self, thinking=(text, signature))

    @_chainable
    def tokens(self, cache_read: int = 0, cache_write: int = 0, reasoning: int = 0) -> Fault:
        """Report these cache and reasoning tokens in the usage, each in the vendor's own convention (Gemini has
        no cache writes). The input stays INPUT_TOKENS in all, the output `output_tokens + reasoning`."""
        return dataclasses.replace(self, counts=(cache_read, cache_write, reasoning))

    @_chainable
    def refuse_stream(self, model: str = "*") -> Fault:
        """Answer a streamed request for `model` ("*": any) with 400 "'stream' does not support true with this
        model", as an upstream does for a model it cannot stream; answer everything else normally."""
        return dataclasses.replace(self, refused_stream_model=model)

    @_chainable
    def refuse_param(self, name: str = "temperature") -> Fault:
        """Answer a request that carries the sampling parameter `name` (Gemini: in its generationConfig) with the
        vendor's own 400 for a parameter the model does not support, as current models do for `temperature`;
        answer everything else normally."""
        return dataclasses.replace(self, refused_param=name)


def _pairs(headers: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """A value may be a callable: it is called when the answer is sent (a reset time counted from then)."""
    return tuple((k.lower(), v if callable(v) else str(v)) for k, v in (headers or {}).items())


# ------------------------------------------------------------------------------------------------------------------
# Records


@dataclass
class Request:
    """One request as the vendor received it, and what it did with it."""

    index: int
    method: str
    path: str
    query: str
    params: dict[str, str]
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    raw_body: bytes  # exactly as received (still zstd-compressed, say), for checks of byte identity
    body: Any  # parsed JSON (of the decoded body), or None
    credential: str | None  # Authorization bearer / x-api-key / x-goog-api-key / api-key (Azure) / key= query
    credential_source: str | None  # "authorization", "x-api-key", "x-goog-api-key", "api-key" or "query"
    protocol: str | None  # chat, responses, anthropic, gemini; or e.g. "openai-models", "anthropic-count_tokens"
    model: str | None
    stream: bool  # whether the vendor answered with a stream
    fault: Fault
    received_at: float  # time.time() when the request was complete
    peer: tuple[str, int] | None = None  # the client's address: the same port means a reused connection
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)  # as sent (the plan windows, say)
    headers_sent_at: float | None = None
    events: list[tuple[float, bytes]] = field(default_factory=list)  # (time.time() when sent, bytes)
    ended_at: float | None = None
    outcome: str | None = None  # complete, status, cut-clean, cut-eof, cut-reset, error-event, client-gone
    continued: str | None = None  # how it asked for the rest of an answer: "prefill" or "instruction" (continuing)
    dialect: str | None = None  # a dialect of `protocol`: a login's (login_dialects.py, "chatgpt"), a cloud's ("azure")
    organization: str | None = None  # the key's organization, once `organizations` are set
    cache: tuple[int, int] | None = None  # (tokens read, tokens written) in that organization's prompt cache
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def first_event_at(self) -> float | None:
        return self.events[0][0] if self.events else None

    @property
    def sent(self) -> bytes:
        return b"".join(data for _, data in self.events)

    def summary(self) -> dict:
        return {
            "index": self.index,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "protocol": self.protocol,
            "model": self.model,
            "credential": self.credential,
            "stream": self.stream,
            "status": self.status,
            "events": len(self.events),
            "outcome": self.outcome,
            "received_at": self.received_at,
            "ended_at": self.ended_at,
        }


class ClientGone(Exception):
    """The client closed the connection while we were answering."""


# ------------------------------------------------------------------------------------------------------------------
# Answer builders: one list of events (or one JSON body) per protocol


@dataclass
class Ev:
    data: bytes
    delta: bool = False  # carries a content fragment
    payload: dict | None = None  # the JSON inside, for stamping


def split_text(text: str) -> list[str]:
    """'Hello from the' -> ['Hello', ' from', ' the']: several deltas that concatenate back to the text."""
    return re.findall(r"\s*\S+\s*$|\s*\S+", text) if text else []


def split_arguments(arguments: str, parts: int = 4) -> list[str]:
    size = max(1, -(-len(arguments) // parts))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def sse(payload: dict | str, event: str | None = None, eol: str = "\n") -> bytes:
    data = payload if isinstance(payload, str) else _dumps(payload)
    head = f"event: {event}{eol}" if event else ""
    return f"{head}data: {data}{eol}{eol}".encode()


@dataclass
class Ctx:
    index: int
    model: str
    created: int
    body: dict
    fault: Fault
    input_tokens: int = INPUT_TOKENS
    encrypted: str | None = None  # a reasoning item's encrypted_content (Responses, vendor_accounts.py)

    @property
    def deltas(self) -> list[str]:
        return list(self.fault.pieces) or split_text(self.fault.text)

    @property
    def tool(self) -> tuple[str, str] | None:
        return self.fault.tool

    @property
    def fragments(self) -> list[str]:
        return split_arguments(self.tool[1]) if self.tool else []

    @property
    def after(self) -> list[str]:
        """The deltas of the text after the tool call (Chat and Gemini)."""
        return split_text(self.fault.after) if self.tool else []

    @property
    def output_tokens(self) -> int:
        return max(1, len(self.deltas) + len(self.fragments) + len(self.after))


# --- OpenAI Chat Completions


def chat_usage(ctx: Ctx) -> dict:
    read, write, reasoning = ctx.fault.counts
    out = ctx.output_tokens + reasoning
    prompt_details = {"cached_tokens": read, "audio_tokens": 0, **({"cache_write_tokens": write} if write else {})}
    return {
        "prompt_tokens": ctx.input_tokens,
        "completion_tokens": out,
        "total_tokens": ctx.input_tokens + out,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_body(ctx: Ctx) -> dict:
    content = ctx.fault.text + "".join(ctx.after)
    message: dict = {"role": "assistant", "content": content or None, "refusal": None, "annotations": []}
    if ctx.tool:
        name, args = ctx.tool
        message["tool_calls"] = [
            {"id": f"call_fake{ctx.index}", "type": "function", "function": {"name": name, "arguments": args}}
        ]
    return {
        "id": f"chatcmpl-fake{ctx.index}",
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if ctx.tool else "stop",
            }
        ],
        "usage": chat_usage(ctx),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def chat_events(ctx: Ctx, force_usage: bool = False) -> list[Ev]:
    include_usage = force_usage or bool((ctx.body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict, finish: str | None = None, is_delta: bool = False) -> Ev:
        payload: dict = {
            "id": f"chatcmpl-fake{ctx.index}",
            "object": "chat.completion.chunk",
            "created": ctx.created,
            "model": ctx.model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            payload["usage"] = None
        return Ev(sse(payload), is_delta, payload)

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": d}, is_delta=True) for d in ctx.deltas]
    if ctx.tool:
        name, _ = ctx.tool
        call_id = f"call_fake{ctx.index}"
        first = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        events.append(chunk({"tool_calls": [first]}))
        events += [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": frag}}]}, is_delta=True)
            for frag in ctx.fragments
        ]
        events += [chunk({"content": d}, is_delta=True) for d in ctx.after]
    events.append(chunk({}, finish="tool_calls" if ctx.tool else "stop"))
    if include_usage:
        payload = {
            "id": f"chatcmpl-fake{ctx.index}",
            "object": "chat.completion.chunk",
            "created": ctx.created,
            "model": ctx.model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
            "choices": [],
            "usage": chat_usage(ctx),
        }
        events.append(Ev(sse(payload), False, payload))
    events.append(Ev(sse("[DONE]")))
    return events


# --- OpenAI Responses


def responses_usage(ctx: Ctx) -> dict:
    read, write, reasoning = ctx.fault.counts
    out = ctx.output_tokens + reasoning
    return {
        "input_tokens": ctx.input_tokens,
        "input_tokens_details": {"cached_tokens": read, **({"cache_write_tokens": write} if write else {})},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": ctx.input_tokens + out,
    }


def _responses_items(ctx: Ctx) -> list[dict]:
    items: list[dict] = []
    if ctx.encrypted:
        items.append({"id": f"rs_fake{ctx.index}", "type": "reasoning", "summary": [],
                      "encrypted_content": ctx.encrypted})
    if ctx.fault.text:
        items.append(
            {
                "id": f"msg_fake{ctx.index}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": ctx.fault.text, "annotations": [], "logprobs": []}],
            }
        )
    if ctx.tool:
        name, args = ctx.tool
        items.append(
            {
                "id": f"fc_fake{ctx.index}",
                "type": "function_call",
                "status": "completed",
                "call_id": f"call_fake{ctx.index}",
                "name": name,
                "arguments": args,
            }
        )
    return items


def responses_body(ctx: Ctx, status: str = "completed", output: list | None = None, usage: bool = True) -> dict:
    body = ctx.body
    return {
        "id": f"resp_fake{ctx.index}",
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "completed_at": ctx.created if status == "completed" else None,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": ctx.model,
        "output": _responses_items(ctx) if output is None else output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": responses_usage(ctx) if usage else None,
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def responses_events(ctx: Ctx) -> list[Ev]:
    events: list[Ev] = []

    def emit(type_: str, is_delta: bool = False, **fields: Any) -> None:
        payload = {"type": type_, "sequence_number": len(events), **fields}
        events.append(Ev(sse(payload, event=type_), is_delta, payload))

    emit("response.created", response=responses_body(ctx, "in_progress", output=[], usage=False))
    emit("response.in_progress", response=responses_body(ctx, "in_progress", output=[], usage=False))
    for output_index, item in enumerate(_responses_items(ctx)):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            emit(
                "response.output_item.added",
                output_index=output_index,
                item={**item, "status": "in_progress", "content": []},
            )
            ids = {"item_id": item["id"], "output_index": output_index, "content_index": 0}
            emit("response.content_part.added", **ids, part={"type": "output_text", "text": "", "annotations": []})
            for d in ctx.deltas:
                emit("response.output_text.delta", True, **ids, delta=d, logprobs=[])
            emit("response.output_text.done", **ids, text=text, logprobs=[])
            emit("response.content_part.done", **ids, part={"type": "output_text", "text": text, "annotations": []})
        elif item["type"] == "reasoning":  # (its encrypted_content is whole only in output_item.done)
            emit("response.output_item.added", output_index=output_index, item={**item, "encrypted_content": None})
        else:
            emit(
                "response.output_item.added",
                output_index=output_index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            ids = {"item_id": item["id"], "output_index": output_index}
            for frag in ctx.fragments:
                emit("response.function_call_arguments.delta", True, **ids, delta=frag)
            emit("response.function_call_arguments.done", **ids, name=item["name"], arguments=item["arguments"])
        emit("response.output_item.done", output_index=output_index, item=item)
    emit("response.completed", response=responses_body(ctx))
    return events


# --- Anthropic Messages


def anthropic_body(ctx: Ctx) -> dict:
    content: list[dict] = []
    if ctx.fault.thinking:
        content.append({"type": "thinking", "thinking": ctx.fault.thinking[0], "signature": ctx.fault.thinking[1]})
    if ctx.fault.text:
        content.append({"type": "text", "text": ctx.fault.text})
    if ctx.tool:
        name, args = ctx.tool
        content.append({"type": "tool_use", "id": f"toolu_fake{ctx.index}", "name": name, "input": json.loads(args)})
    return {
        "id": f"msg_fake{ctx.index}",
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": "tool_use" if ctx.tool else "end_turn",
        "stop_sequence": None,
        "usage": anthropic_usage(ctx),
    }


def anthropic_usage(ctx: Ctx) -> dict:
    """input_tokens excludes the cache reads and writes; output_tokens includes thinking."""
    read, write, reasoning = ctx.fault.counts
    usage = {
        "input_tokens": ctx.input_tokens - read - write,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "output_tokens": ctx.output_tokens + reasoning,
        "service_tier": "standard",
    }
    if reasoning:
        usage["output_tokens_details"] = {"thinking_tokens": reasoning}
    return usage


def anthropic_events(ctx: Ctx) -> list[Ev]:
    events: list[Ev] = []

    def emit(type_: str, is_delta: bool = False, **fields: Any) -> None:
        payload = {"type": type_, **fields}
        events.append(Ev(sse(payload, event=type_), is_delta, payload))

    message = {**anthropic_body(ctx), "content": [], "stop_reason": None}
    message["usage"] = {**message["usage"], "output_tokens": 1}
    emit("message_start", message=message)
    index = 0
    if ctx.fault.thinking:
        thinking, signature = ctx.fault.thinking
        emit("content_block_start", index=index, content_block={"type": "thinking", "thinking": "", "signature": ""})
        emit("content_block_delta", index=index, delta={"type": "thinking_delta", "thinking": thinking})
        emit("content_block_delta", index=index, delta={"type": "signature_delta", "signature": signature})
        emit("content_block_stop", index=index)
        index += 1
    if ctx.fault.text:
        emit("content_block_start", index=index, content_block={"type": "text", "text": ""})
        emit("ping")
        for d in ctx.deltas:
            emit("content_block_delta", True, index=index, delta={"type": "text_delta", "text": d})
        emit("content_block_stop", index=index)
        index += 1
    if ctx.tool:
        name, _ = ctx.tool
        block = {"type": "tool_use", "id": f"toolu_fake{ctx.index}", "name": name, "input": {}}
        emit("content_block_start", index=index, content_block=block)
        emit("content_block_delta", index=index, delta={"type": "input_json_delta", "partial_json": ""})
        for frag in ctx.fragments:
            emit("content_block_delta", True, index=index, delta={"type": "input_json_delta", "partial_json": frag})
        emit("content_block_stop", index=index)
    emit(
        "message_delta",
        delta={"stop_reason": "tool_use" if ctx.tool else "end_turn", "stop_sequence": None},
        usage={"output_tokens": ctx.output_tokens + ctx.fault.counts[2]},
    )
    emit("message_stop")
    return events


# --- Gemini


def gemini_usage(ctx: Ctx, candidates: int | None = None) -> dict:
    """promptTokenCount includes the cached tokens; thoughtsTokenCount is apart from candidatesTokenCount."""
    read, _, reasoning = ctx.fault.counts
    out = ctx.output_tokens if candidates is None else candidates
    usage = {
        "promptTokenCount": ctx.input_tokens,
        "candidatesTokenCount": out,
        "totalTokenCount": ctx.input_tokens + out + reasoning,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": ctx.input_tokens}],
    }
    if read:
        usage["cachedContentTokenCount"] = read
    if reasoning:
        usage["thoughtsTokenCount"] = reasoning
    return usage


def _gemini_chunk(ctx: Ctx, parts: list[dict], finish: str | None, usage: dict) -> dict:
    candidate: dict = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": ctx.model,
        "responseId": f"fakeresp{ctx.index}",
    }


def _gemini_parts(ctx: Ctx) -> list[list[dict]]:
    """The parts of each stream chunk: one text delta per chunk; a function call arrives whole, in one part."""
    chunks = [[{"text": d}] for d in ctx.deltas]
    if ctx.tool:
        name, args = ctx.tool
        call: dict = {"functionCall": {"name": name, "args": json.loads(args)}}
        if ctx.fault.thinking:
            call["thoughtSignature"] = ctx.fault.thinking[1]
        chunks.append([call])
        chunks += [[{"text": d}] for d in ctx.after]
    return chunks


def gemini_body(ctx: Ctx) -> dict:
    parts = []
    if ctx.fault.text:
        parts.append({"text": ctx.fault.text})
    for chunk in _gemini_parts(ctx)[len(ctx.deltas) :]:
        parts += chunk
    return _gemini_chunk(ctx, parts, "STOP", gemini_usage(ctx))


def gemini_events(ctx: Ctx, sse_framing: bool = True) -> list[Ev]:
    chunks = _gemini_parts(ctx) or [[{"text": ""}]]
    events = []
    for i, parts in enumerate(chunks):
        last = i == len(chunks) - 1
        usage = gemini_usage(ctx) if last else gemini_usage(ctx, i + 1)
        payload = _gemini_chunk(ctx, parts, "STOP" if last else None, usage)
        if sse_framing:
            data = sse(payload, eol="\r\n")
        else:  # :streamGenerateContent without alt=sse: one JSON array, streamed element by element
            data = ("[" if i == 0 else ",\r\n").encode() + json.dumps(payload, indent=2).encode() + b"\n"
        events.append(Ev(data, bool(parts[0].get("text") or "functionCall" in parts[0]), payload))
    if not sse_framing:
        events.append(Ev(b"]"))
    return events


# --- Errors


_OPENAI_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def family(protocol: str | None) -> str:
    if protocol is None:
        return "openai"
    if protocol.startswith(ANTHROPIC):
        return "anthropic"
    if protocol.startswith(GEMINI):
        return "gemini"
    return "openai"


def error_body(protocol: str | None, status: int, message: str | None = None) -> dict:
    """The vendor's own error JSON for an HTTP status."""
    message = message or f"fake vendor: HTTP {status}"
    fam = family(protocol)
    if fam == "anthropic":
        kind = _ANTHROPIC_ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}
    if fam == "gemini":
        body: dict = {"code": status, "message": message, "status": _GEMINI_STATUS.get(status, "UNKNOWN")}
        if status == 429:
            body["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        }
                    ],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"},
            ]
        return {"error": body}
    kind, code = _OPENAI_ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def sampling_of(protocol: str, body: Any) -> dict:
    """Where a request of `protocol` carries its sampling parameters."""
    if not isinstance(body, dict):
        return {}
    if protocol == GEMINI:
        config = body.get("generationConfig", body.get("generation_config"))
        return config if isinstance(config, dict) else {}
    return body


def param_refusal(protocol: str, name: str) -> dict:
    """The 400 each vendor answers for a parameter the model does not support (their wording, as seen in the
    wild: OpenAI for o-series and GPT-5 models, Anthropic for Opus 4.7 and later, Gemini for an unknown field)."""
    fam = family(protocol)
    if fam == "anthropic":
        return error_body(protocol, 400, f"`{name}` is deprecated for this model.")
    if fam == "gemini":
        message = f"Invalid JSON payload received. Unknown name \"{name}\" at 'generation_config': Cannot find field."
        body = error_body(protocol, 400, message)
        body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                                     "fieldViolations": [{"field": "generation_config", "description": message}]}]
        return body
    body = error_body(protocol, 400, f"Unsupported parameter: '{name}' is not supported with this model.")
    body["error"].update(param=name, code="unsupported_parameter")
    return body


def stream_error_event(protocol: str, sequence_number: int) -> bytes:
    """The in-stream error an overloaded vendor sends after a 200."""
    if protocol == ANTHROPIC:
        return sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error")
    if protocol == GEMINI:
        err = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
        return sse(err, eol="\r\n")
    inner = {"type": "server_error", "code": "server_error", "message": "The server is overloaded.", "param": None}
    if protocol == RESPONSES:
        flat = {k: v for k, v in inner.items() if k != "type"}
        return sse({"type": "error", "sequence_number": sequence_number, **flat, "error": inner}, "error")
    return sse({"error": {k: v for k, v in inner.items()}})


# ------------------------------------------------------------------------------------------------------------------
# Routing


_GEMINI_CALL = re.compile(r"^/(v1beta|v1|v1alpha)/(?:models|tunedModels)/([^/:]+):(\w+)$")
_GEMINI_MODEL = re.compile(r"^/(v1beta|v1|v1alpha)/models/([^/:]+)$")
_GEMINI_CACHE = re.compile(r"^/(?:v1beta|v1|v1alpha)/(cachedContents(?:/[^/:]+)?)$")
GEMINI_CACHES, GEMINI_CACHE = "gemini-caches", "gemini-cache"  # a cache made; one cache read, updated or deleted
_STORED_RESPONSE = re.compile(r"^/v1/responses/(resp_[^/]+)(/cancel)?$")
_CONVERSATION = re.compile(r"^/v1/conversations(?:/([^/]+))?$")
STORED_RESPONSE, CONVERSATION = "responses-stored", "conversation"  # a stored response's calls; a conversation's


def route(method: str, path: str, headers: dict[str, str]) -> tuple[str | None, str | None]:
    """(protocol, model-from-path) for a request; protocol None means 404."""
    is_anthropic = "anthropic-version" in headers or ("x-api-key" in headers and "authorization" not in headers)
    is_gemini = "x-goog-api-key" in headers or "x-goog-api-client" in headers  # (google-genai 3.x lists on /v1 too)
    cache = _GEMINI_CACHE.match(path)
    if cache:
        if cache.group(1) == "cachedContents":
            return (GEMINI_CACHES, None) if method == "POST" else (None, None)
        return (GEMINI_CACHE, None) if method in ("GET", "PATCH", "DELETE") else (None, None)
    if stored := _STORED_RESPONSE.match(path):
        calls = ("POST",) if stored.group(2) else ("GET", "DELETE")  # (cancel; read, delete)
        return (STORED_RESPONSE, None) if method in calls else (None, None)
    if conversation := _CONVERSATION.match(path):
        made = conversation.group(1) is None
        return (CONVERSATION, None) if method in (("POST",) if made else ("GET", "DELETE")) else (None, None)
    if method == "POST":
        if path == "/v1/chat/completions":
            return CHAT, None
        if path == "/v1/responses":
            return RESPONSES, None
        if path == "/v1/messages":
            return ANTHROPIC, None
        if path == "/v1/messages/count_tokens":
            return "anthropic-count_tokens", None
        m = _GEMINI_CALL.match(path)
        if m:
            verb = m.group(3)
            if verb in ("generateContent", "streamGenerateContent"):
                return GEMINI, unquote(m.group(2))
            if verb == "countTokens":
                return "gemini-count_tokens", unquote(m.group(2))
    if method == "GET":
        if path == "/v1/models" and not is_gemini:
            return ("anthropic-models" if is_anthropic else "openai-models"), None
        if path.startswith("/v1/models/") and not is_gemini:
            return ("anthropic-model" if is_anthropic else "openai-model"), unquote(path[len("/v1/models/") :])
        if path in ("/v1beta/models", "/v1/models"):
            return "gemini-models", None
        m = _GEMINI_MODEL.match(path)
        if m:
            return "gemini-model", unquote(m.group(2))
    return None, None


def credential_of(headers: dict[str, str], params: dict[str, str]) -> tuple[str | None, str | None]:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), "authorization"
    for name in ("x-api-key", "x-goog-api-key", "api-key"):
        if name in headers:
            return headers[name], name
    if "key" in params:
        return params["key"], "query"
    return None, None


def other_body(protocol: str, model: str | None, body: Any) -> tuple[int, dict]:
    """Answers for the non-generation endpoints."""
    created = 1_700_000_000
    if protocol == "openai-models":
        return 200, {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": created, "owned_by": "openai"} for m in OPENAI_MODELS],
        }
    if protocol == "openai-model":
        return 200, {"id": model, "object": "model", "created": created, "owned_by": "openai"}
    if protocol in ("anthropic-models", "anthropic-model"):
        models = [
            {"type": "model", "id": m, "display_name": m.replace("-", " ").title(), "created_at": "2025-09-29T00:00:00Z"}
            for m in ANTHROPIC_MODELS
        ]
        if protocol == "anthropic-model":
            return 200, {**models[0], "id": model}
        return 200, {"data": models, "has_more": False, "first_id": models[0]["id"], "last_id": models[-1]["id"]}
    if protocol == "anthropic-count_tokens":
        return 200, {"input_tokens": INPUT_TOKENS}
    if protocol == "gemini-count_tokens":
        return 200, {"totalTokens": INPUT_TOKENS, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}]}
    if protocol in ("gemini-models", "gemini-model"):
        models = [
            {
                "name": f"models/{m}",
                "version": "001",
                "displayName": m,
                "description": "A fake model.",
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 65536,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            }
            for m in GEMINI_MODELS
        ]
        if protocol == "gemini-model":
            return 200, {**models[0], "name": f"models/{model}", "displayName": model}
        return 200, {"models": models}
    return 404, error_body(None, 404, "not found")


# ------------------------------------------------------------------------------------------------------------------
# The server


class _Exchange:
    """One request/response on one connection: writes through h11, notices the client leaving."""

    def __init__(self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rec: Request):
        self.conn, self.reader, self.writer, self.rec = conn, reader, writer, rec
        self.gzip: Any = None  # a zlib compressor, for Fault.gzip()
        self.left: int | None = None  # body bytes still to write, when a content-length says how many

    @property
    def whole(self) -> bool:
        """Every byte of the answer is written (its end may still be h11's bookkeeping)."""
        return self.conn.our_state is h11.DONE or self.left == 0

    async def _write(self, event: Any) -> None:
        if isinstance(event, h11.Response):
            length = next((v for k, v in event.headers if k == b"content-length"), None)
            self.left = int(length) if length is not None else None
        elif isinstance(event, h11.Data) and self.left is not None:
            self.left -= len(event.data)
        data = self.conn.send(event)
        if data is None:
            return
        if self.writer.is_closing():
            raise ClientGone
        self.writer.write(data)
        try:
            await self.writer.drain()
        except (ConnectionError, OSError) as e:
            raise ClientGone from e

    # Records are written before the bytes go out, so a test that has just read them sees them recorded.

    async def headers(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.rec.status, self.rec.headers_sent_at, self.rec.response_headers = status, time.time(), headers
        await self._write(h11.Response(status_code=status, headers=headers))

    async def data(self, data: bytes, sent_at: float | None = None) -> None:
        self.rec.events.append((sent_at or time.time(), data))
        if self.gzip is not None:
            data = self.gzip.compress(data) + self.gzip.flush(zlib.Z_SYNC_FLUSH)
        await self._write(h11.Data(data=data))

    async def end(self, outcome: str = "complete") -> None:
        self.rec.outcome = outcome
        if self.gzip is not None:
            await self._write(h11.Data(data=self.gzip.flush()))
        await self._write(h11.EndOfMessage())

    async def corrupt(self) -> None:
        """Bytes that do not decode (after a flushed deflate block: a block header of the invalid type 3), a moment
        after the rest, so the client reads what came before them on its own."""
        await self.pause(0.2)
        self.rec.outcome = "corrupt"
        await self._write(h11.Data(data=b"\xff" * 16))
        await self._write(h11.EndOfMessage())

    async def endless_line(self, size: int) -> None:
        piece = b"x" * 65536
        await self.data(b"data: ")
        for _ in range(size // len(piece)):
            await self.data(piece)
        self.rec.outcome = "endless-line"
        await self.pause(60)
        await self.end("endless-line")

    async def pause(self, seconds: float) -> None:
        """Sleep, but raise ClientGone as soon as the client closes the connection."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except TimeoutError:
                return
            except (ConnectionError, OSError) as e:
                raise ClientGone from e
            if not data:
                raise ClientGone
            self.conn.receive_data(data)  # a pipelined next request: h11 keeps it for the next cycle

    async def cut(self, how: str) -> None:
        self.rec.outcome = f"cut-{how}"
        if how == "clean":
            await self.end(self.rec.outcome)
            return
        transport = self.writer.transport
        for _ in range(200):  # let already-written bytes leave before a reset discards them
            if transport.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.005)  # (a poll of the transport's buffer: asyncio has no event for it)
        if how == "reset":
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                # ... and leave the kernel too: a reset discards what the peer has not acknowledged (on a loaded
                # machine the last events could still wait in the send queue, and the client got none of them).
                for _ in range(200):
                    if _queued(sock, termios.TIOCOUTQ) == 0:
                        break
                    await asyncio.sleep(0.005)
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            self.writer.close()


class FakeVendor:
    """The fake vendor server. `start()` runs it in a background thread; `serve()` runs it in the current loop.

    `tls` serves HTTPS; `sock` is a listening socket made elsewhere (in another network namespace, say) to serve on
    instead of binding `host` and `port`. `dialects` holds the hooks of the dialects on top of the four protocols
    (tests/support/login_dialects.py; a subclass may give its own: tests/support/fake_cloud.py)."""

    dialects: Any = None  # (the login dialects module, set at the end of this file)

    def __init__(self, host: str = "127.0.0.1", port: int = 0, log: Callable[[str], None] | None = None,
                 tls: ssl.SSLContext | None = None, sock: socket.socket | None = None):
        self.host, self.port = host, port
        self._log = log
        self._tls, self._sock = tls, sock
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[Request] = []
        self._queue: list[Fault] = []
        self._rule: Fault | None = None
        self._key_queues: dict[str, list[Fault]] = {}
        self._key_rules: dict[str, Fault] = {}
        self.orgs = Organizations()  # per-organization caches and stored state, off until `organizations`
        self._busy: dict[asyncio.Task, _Exchange] = {}  # connections in the middle of an answer, with it
        self._conns: dict[asyncio.Task, tuple[h11.Connection, asyncio.StreamReader, Any]] = {}  # all open ones
        self._stale: set[asyncio.Task] = set()  # connections that held a request's bytes at a reset, see `reset`
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._stopping: asyncio.Event | None = None

    # --- scripting (thread-safe, callable from tests)

    def script(self, *faults: Fault, key: str | None = None) -> FakeVendor:
        """Queue faults, consumed one per request in arrival order (only by requests with credential `key`)."""
        with self._lock:
            (self._key_queues.setdefault(key, []) if key is not None else self._queue).extend(faults)
        return self

    def always(self, fault: Fault | None, key: str | None = None) -> FakeVendor:
        """Answer every request (with credential `key`) this way, once its queue is empty; None removes the rule."""
        with self._lock:
            if key is None:
                self._rule = fault
            elif fault is None:
                self._key_rules.pop(key, None)
            else:
                self._key_rules[key] = fault
        return self

    def out_of_credit(self, key: str, headers: dict[str, str] | None = None) -> FakeVendor:
        """The account of `key` has no credit left: each of its requests is refused as OpenAI refuses one (429
        `insufficient_quota`, no `retry-after` unless `headers` name one) until `top_up(key)`."""
        body = {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                          "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}
        return self.always(Fault.status(429, body, headers), key=key)

    def top_up(self, key: str) -> FakeVendor:
        """The account of `key` has credit again (its owner topped it up): its requests are served."""
        return self.always(None, key=key)

    def organizations(self, keys: dict[str, str], ttl: float | None = None,
                      min_tokens: int | None = None) -> FakeVendor:
        """Each key belongs to an organization (any key not named is one of its own): a prompt prefix the same
        organization saw within `ttl` seconds (Anthropic: the markers' own) is a cache read, and Responses state and
        Gemini explicit caches are refused by the others (tests/support/vendor_accounts.py). Until `reset`."""
        self.orgs.assign(keys, ttl, min_tokens)
        return self

    def reset(self) -> None:
        """Forget records, scripts and organizations, and drop connections still in the middle of an answer."""
        self.orgs.reset()
        with self._lock:
            self._requests.clear()
            self._queue.clear()
            self._key_queues.clear()
            self._key_rules.clear()
            self._rule = None
            # (an answer whose bytes are all written is whole for its client, who may send the next request on that
            # connection at once: not dropped, though its task has not left the answer yet)
            busy = [task for task, ex in self._busy.items() if not ex.whole]
        if self._loop is not None and busy:
            for task in busy:
                self._loop.call_soon_threadsafe(task.cancel)
        self._mark_stale()

    def _mark_stale(self) -> None:
        """Mark the connections that hold a request's bytes not handled yet, so that the request is dropped, not
        recorded for the next test: on a loaded machine this loop may read a request a proxy sent before the reset
        (its whole body is in only then) after it. Idle keep-alive connections (a shared proxy's) stay usable. Run
        on this server's loop, where the connections' state is consistent."""
        loop = self._loop
        if loop is None:
            return

        def mark() -> None:
            for task, (conn, reader, sock) in self._conns.items():
                unread = sock is not None and _queued(sock, termios.FIONREAD)
                if task not in self._busy and (conn.their_state is not h11.IDLE or conn.trailing_data[0]
                                               or reader._buffer or unread):
                    self._stale.add(task)

        async def on_the_loop() -> None:
            mark()

        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is loop:  # (reset through /_fake/reset, on the loop itself)
                mark()
                return
        with contextlib.suppress(Exception):  # (a loop stopping meanwhile: nothing left to mark)
            asyncio.run_coroutine_threadsafe(on_the_loop(), loop).result(5)

    def _pick(self, credential: str | None) -> Fault:
        with self._lock:
            if credential is not None:
                queue = self._key_queues.get(credential)
                if queue:
                    return queue.pop(0)
                if credential in self._key_rules:
                    return self._key_rules[credential]
            if self._queue:
                return self._queue.pop(0)
            return self._rule or Fault()

    def _pick_for(self, credential: str | None, headers: dict[str, str]) -> Fault:
        """The fault for a request (a subclass may choose by more than its credential)."""
        return self._pick(credential)

    @property
    def pending(self) -> int:
        """Scripted faults not consumed yet."""
        with self._lock:
            return len(self._queue) + sum(len(q) for q in self._key_queues.values())

    # --- records

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def calls(self, protocol: str | None = None) -> list[Request]:
        """Generation requests (chat, responses, anthropic, gemini), optionally of one protocol."""
        return [r for r in self.requests if r.protocol in GENERATION_PROTOCOLS and protocol in (None, r.protocol)]

    def keys(self) -> list[str | None]:
        """The credential of every generation request, in arrival order."""
        return [r.credential for r in self.calls()]

    def wait_for(self, n: int, timeout: float = 10.0, done: bool = True) -> list[Request]:
        """Wait until at least `n` requests arrived (and, with `done`, their answers ended); return them all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                reqs = list(self._requests)
                if len(reqs) >= n and (not done or all(r.done.is_set() for r in reqs[:n])):
                    return reqs
                left = deadline - time.monotonic()
                if left <= 0:
                    summary = json.dumps([r.summary() for r in reqs], indent=1)
                    raise TimeoutError(f"fake vendor: wanted {n} requests (done={done}) in {timeout}s; got {summary}")
                self._changed.wait(min(left, 0.05))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- lifecycle

    def start(self) -> FakeVendor:
        started = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve(started))
            except BaseException as e:  # noqa: BLE001 - surfaced to start()
                errors.append(e)
                started.set()

        self._thread = threading.Thread(target=run, name="fake-vendor", daemon=True)
        self._thread.start()
        started.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    async def serve(self, started: threading.Event | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self._sock is not None:
            self._server = await asyncio.start_server(self._connection, sock=self._sock, ssl=self._tls)
        else:
            self._server = await asyncio.start_server(self._connection, self.host, self.port, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]
        if started is not None:
            started.set()
        async with self._server:
            await self._stopping.wait()
            self._server.close()
            for task in list(self._conns):  # idle keep-alive connections too: wait_closed() waits for them
                task.cancel()
        self._loop = None

    # --- connection handling

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        task = asyncio.current_task()
        self._conns[task] = (conn, reader, writer.get_extra_info("socket"))  # type: ignore[index]
        try:
            while True:
                request = await self._read_event(conn, reader)
                if not isinstance(request, h11.Request):
                    break
                chunks = []
                while True:
                    event = await self._read_event(conn, reader)
                    if isinstance(event, h11.Data):
                        chunks.append(bytes(event.data))
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:
                        return
                if task in self._stale:  # sent before a reset, read after it: the test that sent it is over
                    writer.transport.abort()
                    return
                rec = self._record(request, b"".join(chunks), writer.get_extra_info("peername"))
                ex = _Exchange(conn, reader, writer, rec)
                with self._lock:
                    self._busy[task] = ex  # type: ignore[index]
                try:
                    await self._respond(ex)
                except ClientGone:
                    rec.outcome = rec.outcome or "client-gone"
                except asyncio.CancelledError:
                    rec.outcome = rec.outcome or "client-gone"
                    raise
                finally:
                    with self._lock:
                        self._busy.pop(task, None)  # type: ignore[arg-type]
                    rec.ended_at = time.time()
                    rec.done.set()
                    with self._changed:
                        self._changed.notify_all()
                    if self._log:
                        self._log(f"{rec.method} {rec.path} key={rec.credential} -> {rec.status} {rec.outcome}")
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE or writer.is_closing():
                    break
                conn.start_next_cycle()
        except (h11.RemoteProtocolError, ConnectionError, OSError, ClientGone):
            pass
        except asyncio.CancelledError:  # reset() or stop(): drop the connection (not re-raised: asyncio would log it)
            writer.transport.abort()
        finally:
            self._conns.pop(task, None)  # type: ignore[arg-type]
            self._stale.discard(task)  # type: ignore[arg-type]
            if not writer.is_closing():
                writer.close()

    @staticmethod
    async def _read_event(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await reader.read(65536)
            except (ConnectionError, OSError):
                data = b""
            conn.receive_data(data)

    def _record(self, request: h11.Request, raw: bytes, peer: Any = None) -> Request:
        target = request.target.decode("latin-1")
        path, _, query = target.partition("?")
        params = dict(parse_qsl(query, keep_blank_values=True))
        headers: dict[str, str] = {}
        for name, value in request.headers:
            key, val = name.decode("latin-1").lower(), value.decode("latin-1")
            headers[key] = f"{headers[key]}, {val}" if key in headers else val
        try:
            body = json.loads(self.dialects.decoded(raw, headers)) if raw else None
        except ValueError:
            body = None
        credential, source = credential_of(headers, params)
        method = request.method.decode()
        dialect_route = self.dialects.route(method, path, headers)  # (protocol, dialect[, model from the path])
        if dialect_route:
            protocol, path_model = dialect_route[0], dialect_route[2] if len(dialect_route) > 2 else None
        else:
            protocol, path_model = route(method, path, headers)
        model = path_model or (body.get("model") if isinstance(body, dict) else None)
        said = getattr(self.dialects, "streams", None)  # (a dialect whose path says it: Bedrock's operations)
        if dialect_route and said is not None and (by_path := said(dialect_route[1], path)) is not None:
            stream = by_path
        elif protocol == GEMINI:
            stream = path.endswith(":streamGenerateContent")
        else:
            stream = protocol in GENERATION_PROTOCOLS and isinstance(body, dict) and body.get("stream") is True
        takes_fault = not path.startswith("/_fake/") and (not dialect_route or self.dialects.takes_fault(protocol))
        fault = self._pick_for(credential, headers) if takes_fault else Fault()
        with self._lock:
            rec = Request(
                index=len(self._requests),
                method=method,
                path=path,
                query=query,
                params=params,
                headers=headers,
                raw_body=raw,
                body=body,
                credential=credential,
                credential_source=source,
                protocol=protocol,
                model=model,
                stream=stream,
                fault=fault,
                received_at=time.time(),
                peer=tuple(peer[:2]) if peer else None,
                dialect=dialect_route[1] if dialect_route else None,
            )
            if not path.startswith("/_fake/"):
                self._requests.append(rec)
            self._changed.notify_all()
        return rec

    async def _respond(self, ex: _Exchange) -> None:
        rec, fault = ex.rec, ex.rec.fault
        if rec.path.startswith("/_fake/"):
            await self._control(ex)
            return
        if fault.delay_headers:
            await ex.pause(fault.delay_headers)
        if fault.hangs_up:
            rec.outcome = "hung-up"
            ex.writer.close()
            return
        base = [("server", "fake-vendor"), ("x-fake-vendor-request", str(rec.index))]
        fam = family(rec.protocol)
        base.append(("request-id" if fam == "anthropic" else "x-request-id", f"req_fake{rec.index}"))
        base += [(k, str(v()) if callable(v) else v) for k, v in fault.headers]
        if rec.dialect:
            base = self.dialects.headers(rec, base)

        if fault.status_code is not None and fault.status_code >= 400 or rec.protocol is None:
            status = fault.status_code or 404
            body = fault.error_body if fault.error_body is not None else error_body(rec.protocol, status)
            await self._send_whole(ex, status, base, body)
            return
        if rec.protocol in (GEMINI_CACHES, GEMINI_CACHE):
            name = rec.path.split("/", 2)[2] if rec.protocol == GEMINI_CACHE else None  # (/v1beta/cachedContents/x)
            status, body, rec.organization = self.orgs.cache_call(rec.method, name, rec.body, rec.credential, rec.index)
            await self._send_whole(ex, status, base, body)
            return
        if rec.protocol == STORED_RESPONSE:
            _, _, response_id, *cancel = rec.path.split("/")[1:]
            status, body, rec.organization = self.orgs.response_call(rec.method, response_id, bool(cancel),
                                                                     rec.credential)
            await self._send_whole(ex, status, base, body)
            return
        if rec.protocol == CONVERSATION:
            name = rec.path.split("/")[3] if rec.path.count("/") == 3 else None  # (/v1/conversations/<id>)
            status, body, rec.organization = self.orgs.conversation_call(rec.method, name, rec.credential, rec.index)
            await self._send_whole(ex, status, base, body)
            return
        if rec.protocol not in GENERATION_PROTOCOLS:
            dialect_answer = self.dialects.other(rec.protocol, rec.body) if rec.dialect else None
            status, body = dialect_answer or other_body(rec.protocol, rec.model, rec.body)
            body = fault.error_body if fault.error_body is not None else body  # (Fault.status(200, body))
            await self._send_whole(ex, fault.status_code or status, base, body)
            return
        if not isinstance(rec.body, dict) and rec.protocol != GEMINI:
            await self._send_whole(ex, 400, base, error_body(rec.protocol, 400, "request body is not JSON"))
            return
        refused = self.dialects.refusal(rec) if rec.dialect else None
        if refused is not None:
            await self._send_whole(ex, refused[0], base, refused[1])
            return
        asked = self.dialects.inner(rec) if rec.dialect else rec.body  # (Code Assist's envelope unwrapped)
        if fault.refused_param is not None and fault.refused_param in sampling_of(rec.protocol, asked):
            await self._send_whole(ex, 400, base, param_refusal(rec.protocol, fault.refused_param))
            return
        if rec.stream and fault.refused_stream_model in ("*", rec.model):
            message = f"Unsupported value: 'stream' does not support true with this model ({rec.model})."
            await self._send_whole(ex, 400, base, error_body(rec.protocol, 400, message))
            return

        served = self.orgs.serve(rec.protocol, asked, rec.credential, rec.index)
        if isinstance(served, Refused):
            rec.organization = served.organization
            await self._send_whole(ex, served.status, base, served.body)
            return
        if rec.protocol != GEMINI or isinstance(asked, dict):
            asking = continuation.asked(rec.protocol, asked or {})
            constrained = asking is not None and continuation.structured(rec.protocol, asked or {})
            if asking is not None and asking[0] == "prefill" and fault.refuses_prefill:
                await self._send_whole(ex, 400, base, continuation.PREFILL_REFUSALS[rec.protocol])
                return
            if asking is not None and asking[0] == "prefill" and constrained and rec.protocol == ANTHROPIC:
                await self._send_whole(ex, 400, base, continuation.PREFILL_WITH_FORMAT)
                return
            if fault.alternates and continuation.repeats_user(rec.protocol, rec.body or {}):
                await self._send_whole(ex, 400, base, error_body(rec.protocol, 400, continuation.NOT_ALTERNATING))
                return
            if asking is not None and fault.continues:
                rec.continued = asking[0]
                fault = dataclasses.replace(
                    fault, text=continuation.rest(fault.text, *asking, fault.overlap, constrained), pieces=())
        ctx = Ctx(rec.index, rec.model or "fake-model", int(rec.received_at), asked or {}, fault)
        answered = None  # (a stored Responses answer, as its request gets it)
        if isinstance(served, Served):
            rec.organization, rec.cache = served.organization, (served.cache_read, served.cache_write)
            ctx.fault = dataclasses.replace(fault, counts=(served.cache_read, served.cache_write, fault.counts[2]))
            ctx.input_tokens, ctx.encrypted = served.input_tokens, served.encrypted
            if rec.protocol == RESPONSES:
                served.store(_responses_items(ctx))
                background = ctx.body.get("background") is True  # (its answer is queued, polled for by its id)
                answered = self.orgs.answered(f"resp_fake{rec.index}", {**responses_body(ctx), "background": background})
        forced = fault.force_stream and not rec.stream
        rec.stream = rec.stream or fault.force_stream
        if rec.stream:
            if rec.protocol == CHAT:
                events = chat_events(ctx, force_usage=forced)
            elif rec.protocol == RESPONSES:
                events = responses_events(ctx)
            elif rec.protocol == ANTHROPIC:
                events = anthropic_events(ctx)
            else:
                events = gemini_events(ctx, sse_framing=forced or rec.params.get("alt") == "sse")
            if rec.dialect:
                events = self.dialects.events(rec, events, base)
            sse_type = not (rec.protocol == GEMINI and not forced and rec.params.get("alt") != "sse")
            content_type = "text/event-stream; charset=utf-8" if sse_type else "application/json; charset=UTF-8"
            own_type = getattr(self.dialects, "stream_type", None)  # (Bedrock's event streams)
            content_type = (own_type(rec) if rec.dialect and own_type is not None else None) or content_type
            if fault.encoding:
                base.append(("content-encoding", fault.encoding))
                ex.gzip = zlib.compressobj(wbits=31)
            await ex.headers(200, base + [("content-type", content_type), ("cache-control", "no-cache")])
            await self._stream(ex, events)
        else:
            builders = {CHAT: chat_body, RESPONSES: responses_body, ANTHROPIC: anthropic_body, GEMINI: gemini_body}
            whole = builders[rec.protocol](ctx)
            if rec.protocol == RESPONSES and answered is not None:
                whole = answered
            body = json.dumps(self.dialects.whole(rec, whole) if rec.dialect else whole, indent=None).encode()
            await self._send_body(ex, base, body)

    async def _send_whole(self, ex: _Exchange, status: int, headers: list, body: Any) -> None:
        if isinstance(body, (dict, list)):
            data, ctype = json.dumps(body).encode(), "application/json"
        else:
            data, ctype = (body.encode() if isinstance(body, str) else bytes(body)), "text/plain; charset=utf-8"
        if not any(k == "content-type" for k, _ in headers):
            headers = headers + [("content-type", ctype)]
        await ex.headers(status, headers + [("content-length", str(len(data)))])
        if ex.rec.fault.drip:
            for i in range(len(data)):
                if i:
                    await ex.pause(ex.rec.fault.drip)
                await ex.data(data[i : i + 1])
        else:
            await ex.data(data)
        await ex.end("status" if status >= 400 else "complete")

    async def _send_body(self, ex: _Exchange, headers: list, body: bytes) -> None:
        """A non-stream answer, with the stream faults mapped onto its body (they act halfway through it)."""
        fault, rec = ex.rec.fault, ex.rec
        if fault.encoding:
            wire = zlib.compress(body, wbits=31)
            wire = wire[:10] + b"\xff" * 16 if fault.corrupt else wire  # the gzip header, then no valid block
            headers = headers + [("content-type", "application/json"), ("content-encoding", fault.encoding)]
            await ex.headers(200, headers + [("content-length", str(len(wire)))])
            rec.events.append((time.time(), body))
            rec.outcome = "corrupt" if fault.corrupt else "complete"
            await ex._write(h11.Data(data=wire))
            await ex._write(h11.EndOfMessage())
            return
        headers = headers + [("content-type", "application/json"), ("content-length", str(len(body)))]
        await ex.headers(200, headers)
        if fault.delay_first_event:
            await ex.pause(fault.delay_first_event)
        half = len(body) // 2
        if fault.cut or fault.stall or fault.error:
            await ex.data(body[:half])
            if fault.cut or fault.error:
                await ex.cut("eof" if fault.cut_how == "clean" or fault.error else fault.cut_how)
                return
            await ex.pause(fault.stall_seconds)
            body = body[half:]
        await ex.data(body)
        await ex.end()

    async def _stream(self, ex: _Exchange, events: list[Ev]) -> None:
        fault, rec = ex.rec.fault, ex.rec
        cut_at, stall_at, error_at = (_position(p, events) for p in (fault.cut, fault.stall, fault.error))
        corrupt_at, endless_at = _position(fault.corrupt, events), _position(fault.endless, events)
        if fault.delay_first_event:
            await ex.pause(fault.delay_first_event)
        for i in range(len(events) + 1):
            if i == stall_at:
                await ex.pause(fault.stall_seconds)
            if i == error_at:
                rec.outcome = "error-event"
                dialect_error = self.dialects.error_event(rec, i) if rec.dialect else None
                await ex.data(dialect_error or stream_error_event(rec.protocol or CHAT, i))
                await ex.end("error-event")
                return
            if i == cut_at:
                await ex.cut(fault.cut_how)
                return
            if i == corrupt_at:
                await ex.corrupt()
                return
            if i == endless_at:
                await ex.endless_line(fault.endless_size)
                return
            if i == len(events):
                break
            if fault.interval and i > 0:
                await ex.pause(fault.interval)
            ev = events[i]
            data = ev.data
            now = time.time()
            if fault.interval and ev.payload is not None:
                data = _stamp(ev, rec.protocol, now)
            await ex.data(data, now)
        await ex.end()

    async def _control(self, ex: _Exchange) -> None:
        rec = ex.rec
        headers = [("server", "fake-vendor")]
        if rec.path == "/_fake/requests":
            await self._send_whole(ex, 200, headers, [r.summary() for r in self.requests])
        elif rec.path == "/_fake/reset" and rec.method == "POST":
            self.reset()
            await self._send_whole(ex, 200, headers, {"ok": True})
        elif rec.path == "/_fake/script" and rec.method == "POST":
            faults = [_fault_from_call(call) for call in (rec.body or [])]
            self.script(*faults, key=rec.params.get("key"))
            await self._send_whole(ex, 200, headers, {"ok": True, "queued": len(faults)})
        else:
            await self._send_whole(ex, 404, headers, {"error": "unknown control endpoint"})


def _position(at: At | None, events: list[Ev]) -> int | None:
    """How many events go out before acting at `at`."""
    if at is None:
        return None
    if at.unit == "events":
        return min(max(at.n, 0), len(events))
    seen = 0
    for i, ev in enumerate(events):
        if ev.delta:
            if seen == at.n:
                return i
            seen += 1
    return len(events) if at.n >= seen else None


def _stamp(ev: Ev, protocol: str | None, now: float) -> bytes:
    payload = {**(ev.payload or {}), "x_sent_at": now}
    if protocol == GEMINI:
        return sse(payload, eol="\r\n") if ev.data.startswith(b"data:") else ev.data
    text = ev.data.decode()
    head = text.split("\n", 1)[0] if text.startswith("event:") else None
    event = head[len("event: ") :] if head else None
    return sse(payload, event=event)


def _fault_from_call(call: Any) -> Fault:
    """["cut_after", 3, {"how": "reset"}] -> Fault.cut_after(3, how="reset")."""
    if isinstance(call, str):
        call = [call]
    name, *args = call
    kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
    if name.startswith("_") or not hasattr(Fault, name):
        raise ValueError(f"unknown fault {name!r}")
    return getattr(Fault, name)(*args, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    args = parser.parse_args()
    vendor = FakeVendor(args.host, args.port, log=lambda line: print(line, flush=True))

    async def run() -> None:
        task = asyncio.create_task(vendor.serve())
        while vendor._loop is None or vendor._server is None:
            await asyncio.sleep(0.01)  # (a poll until the server listens)
        print(f"fake vendor listening on {vendor.url}", flush=True)
        await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


from tests.support import login_dialects  # noqa: E402  (the logins' dialects build on the protocols above)

FakeVendor.dialects = login_dialects

if __name__ == "__main__":
    main()

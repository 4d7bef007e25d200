"""Gemini: `POST .../models/{model}:generateContent` and `:streamGenerateContent` (SSE with `alt=sse`)."""

from __future__ import annotations

import re
from typing import cast
from urllib.parse import unquote

from protocols.base import Aggregator, Protocol, Repairer, count, integer, member
from protocols.errors import gemini_error
from protocols.events import Event, StreamParser
from protocols.sse import SSEParser, dumps, json_event, load_object, parse_block
from protocols.urls import segment

PATH = re.compile(r"/(?:models|tunedModels)/([^/:]+):(?:generateContent|streamGenerateContent)$")
GENERATE = ":generateContent"
STREAM_GENERATE = ":streamGenerateContent"
ALT_SSE = "alt=sse"
ALT_PREFIX = "alt="

FINISH_MAX_TOKENS = "MAX_TOKENS"
ROLE_MODEL = "model"
CRLF = b"\r\n"
LF = b"\n"
CRLF_BLANK_LINE = b"\r\n\r\n"
USAGE = "usageMetadata"
PROMPT_TOKENS = "promptTokenCount"
CANDIDATES_TOKENS = "candidatesTokenCount"
THOUGHTS_TOKENS = "thoughtsTokenCount"
TOOL_PROMPT_TOKENS = "toolUsePromptTokenCount"
TOTAL_TOKENS = "totalTokenCount"
# Echoed from the last chunk that carried them.
RESPONSE_KEYS = (USAGE, "modelVersion", "responseId")
TEXT_PART_KEYS = frozenset({"text", "thought", "thoughtSignature"})


class GeminiParser(SSEParser):
    """SSE as google-genai reads it: at the end of the stream, a last `data:` event the stream ended without its blank
    line is still an event (the SDK yields it) when its data is a whole JSON object. Its blank line is added, so that
    whatever follows it (a repaired ending) stays framed."""

    def close(self) -> list[Event]:
        events = super().close()
        rest = self.pending
        if events or not rest:
            return events
        event = parse_block(rest)
        if event.data is None or load_object(event.data) is None:
            return []  # (cut inside it: the SDK would fail on it, the stream is ended as truncated instead)
        eol = CRLF if rest.find(CRLF) >= 0 else LF
        self._keep(b"")
        return [Event(rest.rstrip(b"\r\n") + eol + eol, event.data, event.event, event.id)]


class GeminiRepairer(Repairer):
    """Passes data chunks only; ends a cut stream with one last chunk whose finishReason is MAX_TOKENS."""

    def __init__(self, body: dict) -> None:
        self._eol: bytes | None = None
        self._echo: dict = {}
        self._candidates: set[int] = set()
        self._pieces = 0  # chunks that carried parts, for the usage of an ending Rotator writes

    def feed(self, event: Event) -> bytes:
        if event.data is None:
            return b""
        if self._eol is None:
            self._eol = CRLF if event.raw.endswith(CRLF_BLANK_LINE) else LF
        chunk = load_object(event.data)
        if chunk is None or self.failed:
            return event.raw
        if chunk.get("error"):
            self.started = self.complete = self.failed = True
            return event.raw
        finished = False
        candidates = chunk.get("candidates")
        if candidates:
            for candidate in candidates:
                self._candidates.add(integer(candidate, "index"))
                if candidate.get("finishReason"):
                    finished = True
                elif (candidate.get("content") or {}).get("parts"):
                    self.started = True
                    self._pieces += 1
        elif (chunk.get("promptFeedback") or {}).get("blockReason"):
            finished = True
        if finished:
            self.started = True
        self.complete = finished
        for key in RESPONSE_KEYS:
            if key in chunk:
                self._echo[key] = chunk[key]
        return event.raw

    def length_ending(self) -> bytes:
        candidates = [
            {"content": {"role": ROLE_MODEL, "parts": [{"text": ""}]}, "finishReason": FINISH_MAX_TOKENS,
             "index": index}
            for index in sorted(self._candidates or {0})
        ]
        ending = {"candidates": candidates, **self._echo, USAGE: self._counted_usage()}
        return json_event(ending, eol=self._eol or LF)

    def _counted_usage(self) -> dict:
        """A usageMetadata like the vendor's last one: the counts the stream reported (the prompt's, else 0), the
        candidates counted as one token per chunk that carried parts, or what the stream reported if more."""
        reported = member(self._echo, USAGE)
        prompt = count(reported, PROMPT_TOKENS)
        candidates = max(count(reported, CANDIDATES_TOKENS), self._pieces)
        total = prompt + candidates + count(reported, THOUGHTS_TOKENS) + count(reported, TOOL_PROMPT_TOKENS)
        return {**reported, PROMPT_TOKENS: prompt, CANDIDATES_TOKENS: candidates, TOTAL_TOKENS: total}

    def error_event(self, message: str, status: int = 502) -> bytes:
        self.complete = self.failed = True
        return json_event({"error": gemini_error(status, message)}, eol=self._eol or LF)


class _Candidate:
    __slots__ = ("parts", "texts", "fields", "mergeable")

    def __init__(self) -> None:
        self.parts: list[dict] = []
        self.texts: list[list[str] | None] = []
        self.fields: dict = {}
        self.mergeable = False

    def feed(self, candidate: dict) -> None:
        for part in (candidate.get("content") or {}).get("parts") or ():
            self._add(part)
        for key, value in candidate.items():
            if key != "content" and value is not None:
                self.fields[key] = value

    def _add(self, part: dict) -> None:
        """Append a part, concatenating a text part onto a preceding text part of the same kind.

        A thoughtSignature closes the text part it lands on, so it stays where the model put it.
        """
        is_text = "text" in part and part.keys() <= TEXT_PART_KEYS
        if is_text and self.mergeable and self.parts[-1].get("thought") == part.get("thought"):
            # mergeable: the last part is a text part, so it has a list of texts
            cast(list[str], self.texts[-1]).append(part["text"])
            if "thoughtSignature" in part:
                self.parts[-1]["thoughtSignature"] = part["thoughtSignature"]
                self.mergeable = False
            return
        self.parts.append(dict(part))
        self.texts.append([part["text"]] if is_text else None)
        self.mergeable = is_text and "thoughtSignature" not in part

    def result(self, index: int) -> dict:
        parts = [
            {**part, "text": "".join(texts)} if texts is not None else part
            for part, texts in zip(self.parts, self.texts)
        ]
        return {"content": {"role": ROLE_MODEL, "parts": parts}, **self.fields, "index": index}


class GeminiAggregator(Aggregator):
    """Merges chunks into one response: parts with adjacent texts joined, the last finishReason and usage."""

    def __init__(self, body: dict) -> None:
        self._candidates: dict[int, _Candidate] = {}
        self._echo: dict = {}
        self._finished = False

    @property
    def truncated(self) -> bool:
        return not self._finished and self.error is None

    def feed(self, event: Event) -> None:
        if event.data is None:
            return
        chunk = load_object(event.data)
        if chunk is None:
            return
        if chunk.get("error"):
            self.error = chunk["error"]
            return
        finished = False
        candidates = chunk.get("candidates")
        for candidate in candidates or ():
            index = integer(candidate, "index")
            state = self._candidates.get(index)
            if state is None:
                state = self._candidates[index] = _Candidate()
            state.feed(candidate)
            finished = finished or bool(candidate.get("finishReason"))
        feedback = chunk.get("promptFeedback")
        if feedback:
            self._echo["promptFeedback"] = feedback
            finished = finished or (not candidates and bool(feedback.get("blockReason")))
        self._finished = finished
        for key in RESPONSE_KEYS:
            if key in chunk:
                self._echo[key] = chunk[key]

    def result(self) -> dict:
        candidates = [state.result(index) for index, state in sorted(self._candidates.items())]
        if self.truncated:
            if not candidates:
                candidates = [_Candidate().result(0)]
            for candidate in candidates:
                candidate["finishReason"] = FINISH_MAX_TOKENS
        return {"candidates": candidates, **self._echo}


def with_model(path: str, model: str) -> str:
    """A Gemini call's path asking for `model` instead, escaped as one segment (UnsafeURLValue if it cannot be);
    another path as it is."""
    match = PATH.search(path)
    if match is None:
        return path
    return path[: match.start(1)] + segment(model) + path[match.end(1) :]


def _with_alt_sse(query: str) -> str:
    params = [param for param in query.split("&") if param and not param.startswith(ALT_PREFIX)]
    return "&".join([*params, ALT_SSE])


class Gemini(Protocol):
    name = "gemini"
    family = "gemini"
    heartbeat = None  # the SDK raises on any line that is not `data: {json}`
    model_in_path = True
    vendor_held = ("continuationToken", "continuation_token")  # (proto-JSON takes either spelling)
    repairer_class = GeminiRepairer
    aggregator_class = GeminiAggregator

    def matches(self, method: str, path: str) -> bool:
        return method.upper() == "POST" and PATH.search(path) is not None

    def wants_stream(self, path: str, query: str, body: dict) -> bool:
        return path.endswith(STREAM_GENERATE)

    def parser(self) -> StreamParser:
        return GeminiParser()

    def is_sse(self, path: str, query: str) -> bool:
        """Without `alt=sse`, `:streamGenerateContent` answers with one streamed JSON array instead."""
        return ALT_SSE in query.split("&")

    def model(self, path: str, body: dict) -> str:
        match = PATH.search(path)
        return unquote(match.group(1), errors="replace") if match else ""

    def as_stream(self, path: str, query: str, body: dict) -> tuple[str, str, dict]:
        if path.endswith(GENERATE):
            path = path[: -len(GENERATE)] + STREAM_GENERATE
        return path, _with_alt_sse(query), body

    def with_model(self, path: str, model: str) -> str:
        return with_model(path, model)

    def foreign_query(self, query: str) -> str:
        """Only how the stream is framed: the client's `key` stays with the vendor it called."""
        return ALT_SSE if ALT_SSE in query.split("&") else ""

    def error_body(self, status: int, message: str) -> bytes:
        return dumps({"error": gemini_error(status, message)})


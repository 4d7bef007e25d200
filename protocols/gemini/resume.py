"""Gemini: what a cut stream delivered, the request for its continuation, and the splice (resume-notes §4): parts are
deltas, so the continuation's chunks follow on with the first `responseId` and `modelVersion`; `usageMetadata` is
cumulative on every chunk, so the first attempt's candidate and thought tokens are added (the prompt stays the first
attempt's); no `continuationToken` reaches the client (its SDK would resume with it by itself).

A prefill is the partial's model turn last; a partial that ends in a function call (its response follows it), or
whose request asked for JSON (`responseMimeType`, a schema), is asked for in words; a JSON answer is not continued at
all once its JSON began (protocols/resume/asking.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.base import count, member
from protocols.capabilities import Capabilities
from protocols.events import Event
from protocols.gemini import stream as S
from protocols.gemini.translate.vocabulary import get_field
from protocols.resume import Delivered, Method, Seam
from protocols.resume.asking import INSTRUCTION, NOT_RUN, STRUCTURED, OutputCap, json_begun, prefill_text, spent
from protocols.resume.kept import KeptEvents, json_block
from protocols.sse import load_object

ROLE_USER = "user"
CONTINUATION_TOKEN = "continuationToken"
ADDED_COUNTS = (S.CANDIDATES_TOKENS, S.THOUGHTS_TOKENS)
PLAIN_TEXT = "text/plain"


@dataclass(frozen=True, slots=True)
class GeminiDelivered(Delivered):
    parts: tuple[dict, ...] = ()  # the model turn so far: text and whole function calls, thoughts left out

    def carried(self) -> tuple[dict, ...]:
        return self.parts


class GeminiResumer:
    name = "gemini"
    # (thinking counts in it; the proto-JSON parser takes either spelling of each name)
    output_cap = OutputCap(tuple((config, cap) for config in ("generationConfig", "generation_config")
                                 for cap in ("maxOutputTokens", "max_output_tokens")))

    holder = None  # a function call arrives whole, in one part

    def observer(self, body: dict) -> GeminiObserver:
        return GeminiObserver(body)

    def prefills(self, body: dict, delivered: Delivered) -> bool:
        parts = delivered.carried()
        return bool(parts) and _is_text(parts[-1]) and not structured(body)

    def continuation_body(self, body: dict, delivered: Delivered, method: Method, caps: Capabilities) -> dict:
        parts = [dict(part) for part in delivered.carried()]
        if method == "prefill":
            parts[-1]["text"] = prefill_text(parts[-1]["text"], caps)
            if not parts[-1]["text"] and "thoughtSignature" not in parts[-1]:
                parts.pop()
        turns = list(body.get("contents") or []) + _model_turns(parts)
        if method == "prefill" and caps.prefill_marker and turns and turns[-1]["role"] == S.ROLE_MODEL:
            turns[-1][caps.prefill_marker] = True
        if method == "instruction":
            if turns and turns[-1]["role"] == ROLE_USER and parts:
                turns[-1]["parts"].append({"text": INSTRUCTION})
            else:
                turns.append({"role": ROLE_USER, "parts": [{"text": INSTRUCTION}]})
        return {key: value for key, value in {**body, "contents": turns}.items() if key not in S.Gemini.vendor_held}


def _model_turns(parts: list[dict]) -> list[dict]:
    """The partial answer as model turns; each run of function calls answered by a user turn of results (a call in
    a request needs one): not run yet."""
    turns: list[dict] = []
    current: list[dict] = []
    answers: list[dict] = []
    for part in parts:
        if "functionCall" in part:
            current.append(part)
            name = (part.get("functionCall") or {}).get("name")
            answers.append({"functionResponse": {"name": name, "response": {"result": NOT_RUN}}})
            continue
        if answers:
            turns += [{"role": S.ROLE_MODEL, "parts": current}, {"role": ROLE_USER, "parts": answers}]
            current, answers = [], []
        current.append(part)
    if current:
        turns.append({"role": S.ROLE_MODEL, "parts": current})
    if answers:
        turns.append({"role": ROLE_USER, "parts": answers})
    return turns


def structured(body: dict) -> bool:
    """Whether the request constrains the answer (JSON, with or without a schema; an enum)."""
    config = get_field(body, "generationConfig")
    if not isinstance(config, dict):
        return False
    mime = get_field(config, "responseMimeType")
    schema = any(get_field(config, key) is not None for key in ("responseSchema", "responseJsonSchema"))
    return schema or (isinstance(mime, str) and mime not in ("", PLAIN_TEXT))


def _is_text(part: dict) -> bool:
    return "text" in part and part.keys() <= S.TEXT_PART_KEYS


class GeminiObserver:
    def __init__(self, body: dict) -> None:
        self._body = body
        self._kept = KeptEvents()
        self.feed = self._kept.feed
        self.quiet = self._kept.quiet

    def delivered(self) -> GeminiDelivered:
        aggregator = S.GeminiAggregator(self._body)
        for event in self._kept.events():
            aggregator.feed(event)
        result = aggregator.result()
        candidates = result["candidates"]
        parts = candidates[0]["content"]["parts"] if candidates else []
        answer = tuple(part for part in parts if not part.get("thought"))
        text = "".join(part["text"] for part in answer if _is_text(part))
        usage = member(result, S.USAGE)  # (cumulative on every chunk: exact, where the vendor sent it)
        output = spent(sum(count(usage, key) for key in ADDED_COUNTS), 0,
                       "".join(part.get("text") or "" for part in parts))
        if len(candidates) > 1:
            return GeminiDelivered(text, False, "several candidates", output)
        if parts and parts[-1].get("thought"):
            return GeminiDelivered(text, False, "cut inside reasoning", output)
        if any((part.get("functionCall") or {}).get("willContinue") for part in parts):
            return GeminiDelivered(text, False, "cut inside a function call", output)
        if json_begun(structured(self._body), text):
            return GeminiDelivered(text, False, STRUCTURED, output)
        return GeminiDelivered(text, True, output_tokens=output, parts=answer)

    def splicer(self, seam: Seam) -> GeminiSplicer:
        last: dict = {}
        eol = S.LF
        for event in self._kept.events():
            chunk = load_object(event.data) if event.data is not None else None
            if chunk is not None:
                eol = S.CRLF if event.raw.endswith(S.CRLF_BLANK_LINE) else S.LF
                last.update({key: chunk[key] for key in S.RESPONSE_KEYS if key in chunk})
        return GeminiSplicer(last, seam, eol)


class GeminiSplicer:
    """The continuation's chunks under the first attempt's ids and counts; its text through the seam, and nothing
    sent until the seam has decided (a continuation that started over leaves no trace)."""

    def __init__(self, first: dict, seam: Seam, eol: bytes) -> None:
        self.failed = False
        self._first, self._seam, self._eol = first, seam, eol
        self._signature: str | None = None  # a thoughtSignature on text the seam still holds
        self._usage: dict = member(first, S.USAGE)

    def feed(self, event: Event) -> list[Event]:
        chunk = load_object(event.data) if event.data is not None else None
        if self.failed or chunk is None:
            return []
        if chunk.get("error"):
            return [json_block(chunk, eol=self._eol)]
        candidates = chunk.get("candidates") or [{}]
        candidate = {key: value for key, value in candidates[0].items() if key != CONTINUATION_TOKEN}
        parts = self._parts((candidate.get("content") or {}).get("parts") or [])
        if candidate.get("finishReason"):
            parts += self._flushed()
        if self.failed:
            return []
        if S.USAGE in chunk:
            self._usage = self._combined(member(chunk, S.USAGE))
        if not self._seam.decided or not (parts or candidate.get("finishReason")):
            return []
        candidate["content"] = {**(candidate.get("content") or {}), "role": S.ROLE_MODEL, "parts": parts}
        return [self._chunk(candidate, chunk)]

    def finish(self) -> list[Event]:
        parts = self._flushed()
        if not parts or self.failed:
            return []
        return [self._chunk({"content": {"role": S.ROLE_MODEL, "parts": parts}, "index": 0}, {})]

    def _parts(self, given: list[dict]) -> list[dict]:
        out: list[dict] = []
        for part in given:
            if part.get("thought"):
                continue  # the continuation thinking again about an answer already under way
            if not _is_text(part):
                out += self._flushed() + [part]
                continue
            self._signature = part.get("thoughtSignature", self._signature)
            text = self._seam.feed(part["text"])
            if self._seam.failed:
                self.failed = True
            elif self._seam.decided:
                out += self._text_part(text)
        return out

    def _flushed(self) -> list[dict]:
        if self._seam.decided or self.failed:
            return []
        text = self._seam.finish()
        if self._seam.failed:
            self.failed = True
            return []
        return self._text_part(text)

    def _text_part(self, text: str) -> list[dict]:
        part: dict = {"text": text}
        if self._signature is not None:
            part["thoughtSignature"], self._signature = self._signature, None
        return [part] if text or "thoughtSignature" in part else []

    def _combined(self, later: dict) -> dict:
        """The continuation's cumulative usage counted on from the first attempt's: its prompt, both outputs."""
        first = member(self._first, S.USAGE)
        usage = {**later, **{key: count(first, key) + count(later, key)
                             for key in ADDED_COUNTS if key in first or key in later}}
        if S.PROMPT_TOKENS in first:
            usage[S.PROMPT_TOKENS] = count(first, S.PROMPT_TOKENS)
        usage[S.TOTAL_TOKENS] = sum(count(usage, key) for key in
                                    (S.PROMPT_TOKENS, *ADDED_COUNTS, S.TOOL_PROMPT_TOKENS))
        return usage

    def _chunk(self, candidate: dict, chunk: dict) -> Event:
        out = {**chunk, "candidates": [candidate], **{key: self._first[key] for key in ("responseId", "modelVersion")
                                                       if key in self._first}}
        if self._usage:
            out[S.USAGE] = self._usage
        return json_block(out, eol=self._eol)


RESUMER = GeminiResumer()

"""What a person reads of one LLM flow: a header (model, usage, timing, key, attempts, repairs), the request as a
conversation and the answer assembled; and the one-line comment and mark of the flow list.

Pure: it is given the flow's facts (`Facts`) and returns text. addons/views.py hands it mitmproxy's flows.
What it shows of Rotator comes from `flow.metadata["rotator"]`, read defensively: keys other parts of Rotator
add later (`steps` of a translated request, `usage`, `cost`, fallbacks) are shown when present.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from protocols.registry import label
from protocols.transcript import AnswerReading, RequestReading, read_answer, read_request
from protocols.unified import (
    FINISH_LENGTH,
    FINISH_STOP,
    FINISH_TOOL_CALLS,
    GENERATED_TOOL_ID_PREFIX,
    Answer,
    Image,
    Reasoning,
    Request,
    Text,
    ToolCall,
    ToolResult,
    Usage,
)
from rewrite.inspection.flow_list import UNSHOWN, went_on_at_seam
from rewrite.inspection.hedge import hedge_lines
from rewrite.inspection.lines import RULE, clip, indent, text
from rewrite.inspection.steps import steps
from rewrite.inspection.trail import trail_lines
from rewrite.policy.outcomes import Note
from rewrite.pool.logins import plan_text
from rewrite.pool.report import windows_words

MAX_TEXT = 100_000  # characters of one text shown; the Raw view has the rest
SEAM_MARK = "⟦resumed here: {method}, {target}, {trimmed} characters of overlap trimmed⟧"



@dataclass
class Facts:
    """What the views need of one flow."""

    protocol: str
    path: str  # with the query
    request_body: bytes
    status: int | None = None  # None: no response yet
    content_type: str = ""
    response_body: bytes | None = None
    rotator: dict = field(default_factory=dict)  # flow.metadata["rotator"]
    started: float | None = None  # when the request started (epoch seconds)
    ended: float | None = None  # when the response ended
    error: str | None = None  # the flow's error, if it has one


# -- the views -------------------------------------------------------------------------------------------------


def render_request(facts: Facts) -> str:
    request = read_request(facts.protocol, facts.path, facts.request_body)
    answer = _answer(facts)
    return text([*header(facts, request, answer), "", *conversation(request), *steps_part(facts)])


def render_response(facts: Facts) -> str:
    request = read_request(facts.protocol, facts.path, facts.request_body)
    answer = _answer(facts)
    return text([*header(facts, request, answer), "", *assembled(answer, facts.rotator), *steps_part(facts)])


def _answer(facts: Facts) -> AnswerReading | None:
    if facts.status is None or facts.response_body is None:
        return None
    return read_answer(facts.protocol, facts.status, facts.content_type, facts.response_body)


# -- the header ------------------------------------------------------------------------------------------------


def header(facts: Facts, request: RequestReading, answer: AnswerReading | None) -> list[str]:
    rot = facts.rotator
    model = (answer.answer.model if answer and answer.answer and answer.answer.model else None) or (
        request.request.model if request.request else "")
    stream = answer.stream if answer else bool(request.request and request.request.stream)
    title = [label(facts.protocol), model or "model not named",
             "stream" if stream else "non-stream"]
    lines = ["Rotator · " + " · ".join(title)]
    login = rot.get("login") if isinstance(rot.get("login"), dict) else None
    own = f"the client's own login {login.get('credential')} (never pooled)" if login else "the client's own key"
    served = [f"provider {rot['provider']}" if rot.get("provider") else None,
              f"key {rot['key']}" if rot.get("key") else (own if rot.get("provider") else None),
              f"client {rot['client']}" if rot.get("client") else None]
    if any(served):
        lines.append("served by " + " · ".join(s for s in served if s))
    lines.append(timing(facts))
    if answer is not None:
        lines.append("usage: " + usage_line(answer.answer.usage if answer.answer else None, rot.get("usage")))
    if rot.get("covered") == "plan":
        lines.append("cost: covered by the plan")
    elif rot.get("cost") is not None:
        lines.append(f"cost: {cost_text(rot['cost'])}")
    if login and (plan := plan_text(login)):
        lines.append(plan)
    elif isinstance(rot.get("windows"), list) and (shown := windows_words(rot["windows"])):
        lines.append("key windows: " + " · ".join(shown))
    if facts.error:
        lines.append(f"flow error: {facts.error}")
    lines += attempts(rot)
    lines += trail_lines(rot)
    lines += hedge_lines(rot)
    lines += notes(rot)
    return lines


def timing(facts: Facts) -> str:
    ttft = facts.rotator.get("ttft")
    parts = [f"first token after {seconds(ttft)}" if isinstance(ttft, (int, float)) else None]
    if facts.started is not None and facts.ended is not None:
        parts.append(f"total {seconds(facts.ended - facts.started)}")
    elif facts.status is None or facts.ended is None:
        parts.append("in flight" if not facts.error else "did not finish")
    return "timing: " + " · ".join(p for p in parts if p)


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def usage_line(usage: Usage | None, recorded: object = None) -> str:
    if usage is None or not (usage.input_tokens or usage.output_tokens):
        if isinstance(recorded, dict) and recorded:
            return " · ".join(f"{k} {v}" for k, v in recorded.items())
        return "not reported"
    parts = [f"input {usage.input_tokens}", f"output {usage.output_tokens}"]
    if usage.reasoning_tokens:
        parts.append(f"reasoning {usage.reasoning_tokens} (of the output)")
    if usage.cache_read_tokens:
        parts.append(f"cache read {usage.cache_read_tokens}")
    if usage.cache_write_tokens:
        parts.append(f"cache write {usage.cache_write_tokens}")
    return " · ".join(parts)


def cost_text(cost: object) -> str:
    if isinstance(cost, (int, float)):
        return f"${cost:.6f}".rstrip("0").rstrip(".") if cost else "$0"
    if isinstance(cost, dict):
        return " · ".join(f"{k} {cost_text(v) if isinstance(v, (int, float)) else v}" for k, v in cost.items())
    return str(cost)


def _events(rot: dict) -> list[dict]:
    events = rot.get("events")
    return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []


def attempts(rot: dict) -> list[str]:
    """Every attempt: the failed ones (key, reason, duration) and how the last ended."""
    events = _events(rot)
    retries = [e for e in events if e.get("kind") == Note.RETRY]
    failed = next((e for e in events if e.get("kind") == Note.FAILED), None)
    if not retries and failed is None:
        return []
    lines = ["attempts:"]
    for n, e in enumerate(retries, 1):
        took = f" · {seconds(e['seconds'])}" if isinstance(e.get("seconds"), (int, float)) else ""
        key = e.get("key") or "the client’s own"
        lines.append(f"  {e.get('attempt', n)}. key {key} · {e.get('reason', '?')}{took}")
    last = "gave up: " + str(failed.get("reason") or failed.get("detail")) if failed else "served the answer"
    lines.append(f"  {len(retries) + 1}. key {rot.get('key') or 'the client’s own'} · {last}")
    return lines


def notes(rot: dict) -> list[str]:
    """Repairs and everything else Rotator did, one line each."""
    shown = [e for e in _events(rot) if e.get("kind") not in (Note.RETRY, Note.FAILED, *UNSHOWN)]
    if not shown:
        return []
    return ["repairs and notes:", *(f"  {e.get('kind')}: {e.get('detail', '')}" for e in shown)]


def steps_part(facts: Facts) -> list[str]:
    shown = steps(facts.rotator.get("steps"), facts.request_body)
    return ["", *shown] if shown else []


# -- the request -----------------------------------------------------------------------------------------------


def conversation(reading: RequestReading) -> list[str]:
    if reading.request is None:
        return [f"(the request could not be read: {reading.problem})"]
    request = reading.request
    lines = [options(request)]
    if request.tools:
        lines.append(f"tools ({len(request.tools)}): " + ", ".join(t.name for t in request.tools))
    if request.system:
        lines += ["", f"{RULE} system {RULE}", *clip(request.system, MAX_TEXT).splitlines()]
    for message in request.messages:
        lines += ["", f"{RULE} {message.role} {RULE}"]
        for part in message.parts:
            lines += part_lines(part)
    return lines


def options(request: Request) -> str:
    said = [f"model {request.model}" if request.model else None, "stream" if request.stream else None,
            f"max tokens {request.max_tokens}" if request.max_tokens is not None else None,
            f"temperature {request.temperature}" if request.temperature is not None else None]
    if request.reasoning is not None:
        effort = request.reasoning.effort or (f"budget {request.reasoning.budget}" if request.reasoning.budget else "")
        said.append(f"reasoning {effort}".strip() if request.reasoning.enabled else "reasoning off")
    if request.tool_choice is not None:
        said.append(f"tool choice {request.tool_choice.name or request.tool_choice.mode}")
    if request.response_format is not None:
        said.append("structured output")
    return "request: " + (" · ".join(s for s in said if s) or "no options")


def part_lines(part: object) -> list[str]:
    if isinstance(part, Text):
        return clip(part.text, MAX_TEXT).splitlines() or [""]
    if isinstance(part, Reasoning):
        if part.redacted:
            return ["[reasoning, redacted]"]
        return ["[reasoning]", *indent(clip(part.text, MAX_TEXT), 2)]
    if isinstance(part, ToolCall):
        made_up = part.id.startswith(GENERATED_TOOL_ID_PREFIX)  # the protocol has no ids (Gemini)
        head = f"→ tool call {part.name}" + ("" if made_up else f" [{part.id}]")
        return [head, *indent(arguments(part.arguments), 4)]
    if isinstance(part, ToolResult):
        name = f" ({part.name})" if part.name else ""
        error = " (an error)" if part.is_error else ""
        return [f"← tool result for {part.call_id}{name}{error}", *indent(clip(part.text(), MAX_TEXT), 4)]
    if isinstance(part, Image):
        where = part.url if part.url and not part.url.startswith("data:") else f"inline {part.media_type or 'image'}"
        return [f"[image: {where}]"]
    return [f"[{type(part).__name__}]"]


def arguments(text: str) -> str:
    """A tool call's arguments, parsed and indented; as they are, and said, if they are not whole JSON."""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, indent=2)
    except (ValueError, RecursionError):
        return clip(text, MAX_TEXT) + "\n(arguments are not whole JSON)"


# -- the answer ------------------------------------------------------------------------------------------------


def assembled(reading: AnswerReading | None, rot: dict) -> list[str]:
    if reading is None:
        return ["(no answer yet)"]
    lines = [f"{RULE} answer {RULE}"]
    if reading.stream:
        lines.append(f"assembled from a stream of {reading.events} events")
    lines += [f"note: {n}" for n in reading.notes]
    if reading.problem:
        return [*lines, f"(the answer could not be read: {reading.problem})"]
    answer = reading.answer
    if answer is not None:
        parts = seams_marked(answer.parts, rot)
        for part in parts:
            lines += ["", *part_lines(part)]
    if reading.error is not None:
        lines += ["", f"error {reading.error.status}: {reading.error.message}"]
    if answer is not None and reading.error is None:
        lines += ["", "finish: " + finish(answer, reading, rot)]
    return lines


def seams_marked(parts: list, rot: dict) -> list:
    """The answer's parts with a mark in the text where each continuation of a cut answer was joined on
    (`position`: characters into the answer's text, all text parts joined, as the engine counted them)."""
    seams = [s for s in rot.get("resume") or () if isinstance(s, dict) and went_on_at_seam(s)]
    if not seams:
        return parts
    marked, at = [], 0
    for part in parts:
        if isinstance(part, Text):
            text, start = part.text, at
            at += len(text)
            here = [s for s in seams if start < s.get("position", -1) <= at or s.get("position") == start == 0]
            seams = [s for s in seams if s not in here]
            for seam in reversed(here):
                cut = seam["position"] - start
                text = f"{text[:cut]}{SEAM_MARK.format(**seam)}{text[cut:]}"
            part = Text(text)
        marked.append(part)
    return marked


def finish(answer: Answer, reading: AnswerReading, rot: dict) -> str:
    if reading.stream and not reading.complete:
        return "none: the stream ended without its completion signal (the client saw it stop)"
    if answer.finish == FINISH_LENGTH and any(e.get("kind") == Note.REPAIRED for e in _events(rot)):
        return f"{answer.finish} (the upstream was cut: Rotator ended the answer as truncated)"
    if answer.finish == FINISH_STOP and answer.tool_calls():
        return FINISH_TOOL_CALLS  # what every protocol means by an answer that calls tools
    return answer.finish

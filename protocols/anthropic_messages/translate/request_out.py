"""A unified request written as the Anthropic Messages request body sent upstream (`request_from_ir`)."""

from __future__ import annotations

import re

from protocols.anthropic_messages.translate.vocabulary import (
    BLOCK_IMAGE,
    BLOCK_REDACTED,
    BLOCK_TEXT,
    BLOCK_THINKING,
    BLOCK_TOOL_RESULT,
    BLOCK_TOOL_USE,
    FAMILY,
    FORMAT_JSON_SCHEMA,
    NAME,
)
from protocols.capabilities import EFFORT_NONE, THINKING_ADAPTIVE, THINKING_NONE, Capabilities, effort_for
from protocols.registry import model_capabilities
from protocols.translate.common import budget_for, parse_arguments, with_json_instruction
from protocols.translate.tools import as_function
from protocols.unified import (
    CHOICE_AUTO,
    CHOICE_NONE,
    CHOICE_REQUIRED,
    CHOICE_TOOL,
    INSTRUCTION_ROLES,
    ROLE_ASSISTANT,
    ROLE_SYSTEM,
    ROLE_USER,
    Image,
    Part,
    Reasoning,
    Request,
    Text,
    ToolCall,
    ToolResult,
)

# Anthropic requires max_tokens; a client of another protocol may not say it.
DEFAULT_MAX_TOKENS = 8192
MIN_THINKING_BUDGET = 1024
TOOL_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
# In place of prefill on a model that refuses it: the client's trailing assistant turn (Chat, Responses and Gemini
# take one) stays, and this note after it asks for its continuation.
PREFILL_NOTE = "Continue your last message exactly where it ends, without repeating any of it."
CHOICE_TO = {CHOICE_AUTO: "auto", CHOICE_REQUIRED: "any", CHOICE_NONE: "none", CHOICE_TOOL: "tool"}


def tool_id(id_: str) -> str:
    """A tool call id Anthropic accepts (letters, digits, `_` and `-`); a call and its result map alike."""
    return TOOL_ID_CHARS.sub("_", id_) or "toolu_"


def _image(image: Image) -> dict:
    """Lossy: an OpenAI image `detail` has no Anthropic form."""
    if image.url:
        return {"type": BLOCK_IMAGE, "source": {"type": "url", "url": image.url}}
    return {"type": BLOCK_IMAGE, "source": {"type": "base64", "media_type": image.media_type or "image/jpeg",
                                             "data": image.data or ""}}


def _result(result: ToolResult) -> dict:
    content = [{"type": BLOCK_TEXT, "text": p.text} if isinstance(p, Text) else _image(p)
               for p in result.content if not isinstance(p, Text) or p.text]
    block: dict = {"type": BLOCK_TOOL_RESULT, "tool_use_id": tool_id(result.call_id), "content": content}
    if result.is_error:
        block["is_error"] = True
    return block


def _block(part: Part) -> dict | None:
    if isinstance(part, Text):
        return {"type": BLOCK_TEXT, "text": part.text} if part.text else None  # Anthropic rejects empty text
    if isinstance(part, Image):
        return _image(part)
    if isinstance(part, ToolCall):
        return {"type": BLOCK_TOOL_USE, "id": tool_id(part.id), "name": part.name,
                "input": parse_arguments(part.arguments)}
    if isinstance(part, ToolResult):
        return _result(part)
    if isinstance(part, Reasoning) and part.origin == NAME and part.signature:
        if part.redacted:
            return {"type": BLOCK_REDACTED, "data": part.signature}
        return {"type": BLOCK_THINKING, "thinking": part.text, "signature": part.signature}
    # Lossy: thinking without an Anthropic signature (another vendor's, or none) is dropped, never forged.
    return None


def _placed_system(request: Request, i: int, out: list[dict], caps: Capabilities) -> bool:
    """Whether the instruction `request.messages[i]` may stay in place: after a user turn, and last or followed
    by an assistant turn (Anthropic's placement rule), on a model that takes it (the capability table's
    `mid_system`)."""
    following = next((m.role for m in request.messages[i + 1:] if m.role not in INSTRUCTION_ROLES), None)
    return (bool(out) and out[-1]["role"] == ROLE_USER and following in (None, ROLE_ASSISTANT)
            and caps.mid_system)


def _messages(request: Request, caps: Capabilities) -> tuple[list[dict], list[str]]:
    """User/assistant turns with consecutive same-role turns merged; tool results first in their user turn. And
    the instructions that could not stay in place, for the top-level `system`."""
    out: list[dict] = []
    hoisted: list[str] = []
    for i, message in enumerate(request.messages):
        if message.role in INSTRUCTION_ROLES:
            text = "".join(p.text for p in message.parts if isinstance(p, Text))
            if text and _placed_system(request, i, out, caps):
                out.append({"role": ROLE_SYSTEM, "content": text})
            elif text:
                hoisted.append(text)
            continue
        role = ROLE_ASSISTANT if message.role == ROLE_ASSISTANT else ROLE_USER
        blocks = [b for b in map(_block, message.parts) if b is not None]
        if not blocks:
            continue  # Anthropic rejects an empty turn
        if out and out[-1]["role"] == role:
            out[-1]["content"] += blocks
        else:
            out.append({"role": role, "content": blocks})
    for turn in out:
        if turn["role"] == ROLE_USER:
            turn["content"].sort(key=lambda b: b["type"] != BLOCK_TOOL_RESULT)
    return out, hoisted


def _ending(out: list[dict], caps: Capabilities) -> None:
    """A conversation that ends in an assistant turn of text, as the model takes it: followed by `PREFILL_NOTE` on a
    model that refuses prefill (Claude 4.6 and later answer 400), else without the trailing whitespace it refuses."""
    last = out[-1]["content"] if out and out[-1]["role"] == ROLE_ASSISTANT else []
    if not last or any(b["type"] == BLOCK_TOOL_USE for b in last):
        return  # (a call without its result is the vendor's to refuse)
    if not caps.prefill:
        out.append({"role": ROLE_USER, "content": [{"type": BLOCK_TEXT, "text": PREFILL_NOTE}]})
    elif caps.prefill_strip and last[-1]["type"] == BLOCK_TEXT:
        last[-1]["text"] = last[-1]["text"].rstrip()
        if not last[-1]["text"]:
            last.pop()
            if not last:
                out.pop()


def _tool_choice(request: Request) -> dict | None:
    choice = request.tool_choice
    if choice is None and request.parallel_tool_calls is not False:
        return None
    out: dict = {"type": CHOICE_TO.get(choice.mode, "auto") if choice else "auto"}
    if choice is not None and choice.mode == CHOICE_TOOL:
        out["name"] = choice.name
    if request.parallel_tool_calls is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def fitted_budget(budget: int, max_tokens: int) -> int | None:
    """A thinking budget as Anthropic takes it: at least MIN_THINKING_BUDGET and below `max_tokens`; None (thinking
    left off) when `max_tokens` leaves no room for it. Lossy: a budget that does not fit is lowered."""
    budget = min(max(budget, MIN_THINKING_BUDGET), max_tokens - 1)
    return budget if budget >= MIN_THINKING_BUDGET else None


def _thinking(body: dict, request: Request, caps: Capabilities) -> None:
    """`thinking` and `output_config.effort` the way the model wants them: adaptive with an effort, or a budget."""
    reasoning = request.reasoning
    if reasoning is None or caps.thinking == THINKING_NONE:
        return
    if not reasoning.enabled or reasoning.effort == EFFORT_NONE:
        body["thinking"] = {"type": "disabled"}
        return
    effort = effort_for(reasoning)
    if caps.thinking == THINKING_ADAPTIVE:
        body["thinking"] = {"type": "adaptive"}
        if effort:
            body["output_config"] = {"effort": effort}
        return
    budget = budget_for(reasoning)
    if budget is not None and (fitted := fitted_budget(budget, body["max_tokens"])) is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": fitted}
    if effort in caps.efforts:
        body["output_config"] = {"effort": effort}


def request_from_ir(request: Request, caps: Capabilities | None = None) -> dict:
    """`caps`: what the target model accepts (the built-in table's entry for the request's model if not given)."""
    caps = caps or model_capabilities(FAMILY, request.model)
    body: dict = {"model": request.model, "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
                  "messages": []}
    body["messages"], hoisted = _messages(request, caps)
    _ending(body["messages"], caps)
    system = with_json_instruction(request, request.system, *hoisted)
    if system:
        body["system"] = system
    if request.tools:
        body["tools"] = [  # Lossy: `strict` is dropped.
            {"name": t.name, **({"description": t.description} if t.description else {}),
             "input_schema": t.parameters or {"type": "object", "properties": {}}}
            for t in map(as_function, request.tools)
        ]
    if request.tools and (choice := _tool_choice(request)) is not None:
        body["tool_choice"] = choice
    _thinking(body, request, caps)
    thinking = body.get("thinking", {}).get("type") not in (None, "disabled")
    # Lossy: with thinking on, Anthropic refuses temperature, top_k and a low top_p, so they are dropped.
    for key, value in (("temperature", request.temperature), ("top_p", request.top_p), ("top_k", request.top_k)):
        if value is not None and not thinking:
            body[key] = value
    if request.stop:
        body["stop_sequences"] = request.stop
    if request.user:
        body["metadata"] = {"user_id": request.user}
    fmt = request.response_format
    if fmt is not None and fmt.schema is not None:  # Lossy: a schema's name and strict flag have no Messages field
        body.setdefault("output_config", {})["format"] = {"type": FORMAT_JSON_SCHEMA, "schema": fmt.schema}
    # Lossy: JSON without a schema is asked for in words only (`with_json_instruction`); seed has no Messages field.
    if request.stream:
        body["stream"] = True
    return body

"""A unified request written as the Bedrock Converse request body sent upstream (`request_from_ir`), and the path
it is sent to (`endpoint`): the model and streaming are in the path, not the body."""

from __future__ import annotations

import hashlib
import json
import re

from protocols.bedrock_converse.events import (
    IMAGE,
    REASONING,
    REASONING_TEXT,
    REDACTED,
    SIGNATURE,
    TEXT,
    TOOL_RESULT,
    TOOL_USE,
)
from protocols.bedrock_converse.stream import CONVERSE, CONVERSE_STREAM, model_segment
from protocols.bedrock_converse.translate.vocabulary import (
    FAMILY,
    FORMAT_JSON_SCHEMA,
    NAME,
    S3_SCHEME,
    STATUS_ERROR,
    image_format,
)
from protocols.capabilities import (
    EFFORT_NONE,
    THINKING_ADAPTIVE,
    THINKING_BUDGET,
    Capabilities,
    effort_for,
)
from protocols.registry import model_capabilities
from protocols.translate.common import budget_for, output_cap, parse_arguments, with_json_instruction
from protocols.translate.tools import as_function
from protocols.unified import (
    CHOICE_NONE,
    CHOICE_REQUIRED,
    CHOICE_TOOL,
    ROLE_ASSISTANT,
    ROLE_TOOL,
    ROLE_USER,
    Image,
    Part,
    Reasoning,
    Request,
    Text,
    ToolCall,
    ToolResult,
    instructions,
)

MODEL_PATH = "/model/"
MAX_TOOL_ID = 64
TOOL_ID_CHARS = re.compile(r"[^a-zA-Z0-9_.:-]")
DEFAULT_MAX_TOKENS = 8192  # what a thinking budget needs room under, when the client names no maximum
MIN_THINKING_BUDGET = 1024


def tool_id(id_: str) -> str:
    """A tool call id Converse accepts (`[a-zA-Z0-9_.:-]`, at most 64): a call and its result map alike."""
    safe = TOOL_ID_CHARS.sub("_", id_) or "tooluse_"
    if len(safe) <= MAX_TOOL_ID:
        return safe
    return f"{safe[:MAX_TOOL_ID - 13]}_{hashlib.sha256(id_.encode()).hexdigest()[:12]}"


def image_block(image: Image) -> dict:
    """Lossy: Converse takes no URL but an S3 object's; another URL is told in words (Rotator fetches nothing), and
    an OpenAI image `detail` has no Converse form."""
    if image.url and image.url.startswith(S3_SCHEME):
        return {IMAGE: {"format": image_format(image.media_type), "source": {"s3Location": {"uri": image.url}}}}
    if image.url:
        return {TEXT: f"[image: {image.url}]"}
    return {IMAGE: {"format": image_format(image.media_type), "source": {"bytes": image.data or ""}}}


def tool_use_block(call: ToolCall) -> dict:
    return {TOOL_USE: {"toolUseId": tool_id(call.id), "name": call.name, "input": parse_arguments(call.arguments)}}


def reasoning_block(part: Reasoning) -> dict | None:
    """Converse's own reasoning, replayed as it came; another vendor's (or unsigned) never: a signature is not
    forged."""
    if part.origin != NAME or not part.signature:
        return None
    if part.redacted:
        return {REASONING: {REDACTED: part.signature}}
    return {REASONING: {REASONING_TEXT: {TEXT: part.text, SIGNATURE: part.signature}}}


def _result(result: ToolResult) -> dict:
    content = [image_block(p) if isinstance(p, Image) else {TEXT: p.text}
               for p in result.content if not isinstance(p, Text) or p.text]
    block: dict = {"toolUseId": tool_id(result.call_id), "content": content}
    if result.is_error:
        block["status"] = STATUS_ERROR
    return {TOOL_RESULT: block}


def _block(part: Part) -> dict | None:
    if isinstance(part, Text):
        return {TEXT: part.text} if part.text else None  # Converse refuses a blank text block
    if isinstance(part, Image):
        return image_block(part)
    if isinstance(part, ToolCall):
        return tool_use_block(part)
    if isinstance(part, ToolResult):
        return _result(part)
    return reasoning_block(part)


def _messages(request: Request) -> list[dict]:
    """User and assistant turns, consecutive turns of a role merged, tool results first in their user turn.
    Lossy: instructions in the conversation go to the top-level `system`, which is Converse's only place for them."""
    out: list[dict] = []
    for message in request.messages:
        if message.role not in (ROLE_USER, ROLE_ASSISTANT, ROLE_TOOL):
            continue
        role = ROLE_ASSISTANT if message.role == ROLE_ASSISTANT else ROLE_USER
        blocks = [b for b in map(_block, message.parts) if b is not None]
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"] += blocks
        else:
            out.append({"role": role, "content": blocks})
    for turn in out:
        if turn["role"] == ROLE_USER:
            turn["content"].sort(key=lambda b: TOOL_RESULT not in b)
    return out


def _tool_config(request: Request) -> dict | None:
    """Lossy: Converse cannot forbid tools it is given (tool_choice none sends them with no choice), and
    parallel_tool_calls has no Converse field."""
    if not request.tools:
        return None
    tools = [{"toolSpec": {"name": t.name, **({"description": t.description} if t.description else {}),
                           "inputSchema": {"json": t.parameters or {"type": "object", "properties": {}}},
                           **({"strict": t.strict} if t.strict is not None else {})}}
             for t in map(as_function, request.tools)]
    config: dict = {"tools": tools}
    choice = request.tool_choice
    if choice is not None and choice.mode == CHOICE_TOOL and choice.name:
        config["toolChoice"] = {"tool": {"name": choice.name}}
    elif choice is not None and choice.mode == CHOICE_REQUIRED:
        config["toolChoice"] = {"any": {}}
    elif choice is not None and choice.mode != CHOICE_NONE:
        config["toolChoice"] = {"auto": {}}
    return config


def _thinking(body: dict, request: Request, caps: Capabilities) -> bool:
    """An Anthropic model's thinking, in `additionalModelRequestFields` as Bedrock passes it on (and its effort in
    `outputConfig.effort`); whether thinking is on. Other models' reasoning fields differ: Lossy, none is sent."""
    reasoning = request.reasoning
    if reasoning is None or caps.thinking not in (THINKING_BUDGET, THINKING_ADAPTIVE):
        return False
    fields = body.setdefault("additionalModelRequestFields", {})
    if not reasoning.enabled or reasoning.effort == EFFORT_NONE:
        fields["thinking"] = {"type": "disabled"}
        return False
    effort = effort_for(reasoning)
    if caps.thinking == THINKING_ADAPTIVE:
        fields["thinking"] = {"type": "adaptive"}
        if effort:
            body.setdefault("outputConfig", {})["effort"] = effort
        return True
    budget = budget_for(reasoning)
    if budget is None:
        return False
    config = body.setdefault("inferenceConfig", {})
    config.setdefault("maxTokens", DEFAULT_MAX_TOKENS)
    budget = min(max(budget, MIN_THINKING_BUDGET), config["maxTokens"] - 1)
    if budget < MIN_THINKING_BUDGET:  # Lossy: no room under maxTokens for thinking
        return False
    fields["thinking"] = {"type": "enabled", "budget_tokens": budget}
    return True


def request_from_ir(request: Request, caps: Capabilities | None = None) -> dict:
    """`caps`: what the target model accepts (the built-in table's entry for the request's model if not given)."""
    caps = caps or model_capabilities(FAMILY, request.model)
    body: dict = {"messages": _messages(request)}
    fmt = request.response_format
    system = with_json_instruction(request, instructions(request))  # Converse has no JSON mode without a schema
    if system:
        body["system"] = [{TEXT: system}]
    config: dict = {}
    if request.max_tokens is not None:
        config["maxTokens"] = output_cap(request.max_tokens)
    if request.stop:
        config["stopSequences"] = request.stop
    if config:
        body["inferenceConfig"] = config
    tools = _tool_config(request)
    if tools is not None:
        body["toolConfig"] = tools
    thinking = _thinking(body, request, caps)
    # Lossy: with thinking on, Anthropic models refuse temperature, top_p and top_k, so they are dropped.
    if not thinking:
        for key, value in (("temperature", request.temperature), ("topP", request.top_p)):
            if value is not None:
                body.setdefault("inferenceConfig", {})[key] = value
        if request.top_k is not None and caps.thinking in (THINKING_BUDGET, THINKING_ADAPTIVE):
            body.setdefault("additionalModelRequestFields", {})["top_k"] = request.top_k  # Anthropic models only
    if fmt is not None and fmt.schema is not None:
        schema: dict = {"schema": json.dumps(fmt.schema)}
        if fmt.name:
            schema["name"] = fmt.name
        body.setdefault("outputConfig", {})["textFormat"] = {"type": FORMAT_JSON_SCHEMA,
                                                             "structure": {"jsonSchema": schema}}
    # Lossy: seed and the end user have no Converse field.
    return body


def endpoint(model: str, stream: bool) -> tuple[str, str]:
    return MODEL_PATH + model_segment(model) + (CONVERSE_STREAM if stream else CONVERSE), ""

"""A unified answer, usage and error written as the OpenAI Responses client reads them."""

from __future__ import annotations

import hashlib

from protocols.capabilities import effort_for
from protocols.errors import openai_error
from protocols.openai_responses.translate.request_out import tool_choice, tools
from protocols.openai_responses.translate.vocabulary import ITEM_CUSTOM_CALL, NAME, REASON_CONTENT_FILTER, SYNTHETIC_ID
from protocols.openai_responses.vocabulary import (
    ITEM_FUNCTION_CALL,
    ITEM_MESSAGE,
    ITEM_REASONING,
    PART_OUTPUT_TEXT,
    PART_SUMMARY_TEXT,
    REASON_MAX_OUTPUT_TOKENS,
    STATUS_IN_PROGRESS,
    STATUS_INCOMPLETE,
)
from protocols.sse import dumps
from protocols.translate.tools import client_tool, custom_input
from protocols.unified import (
    FINISH_CONTENT_FILTER,
    FINISH_LENGTH,
    ROLE_ASSISTANT,
    Answer,
    Reasoning,
    Request,
    Text,
    Tool,
    ToolCall,
    Usage,
)
from protocols.unified_stream import Error

STATUS_COMPLETED = "completed"


def usage_from_ir(usage: Usage) -> dict:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens,
                                 "cache_write_tokens": usage.cache_write_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def output_item_id(prefix: str, response_id: str, index: int) -> str:
    digest = hashlib.sha256(response_id.encode()).hexdigest()[:16]
    return f"{prefix}_{digest}{index:03d}"


def reasoning_item(item_id: str, text: str, signature: str | None, origin: str | None) -> dict:
    """Lossy: another vendor's whole thinking text is shown as the reasoning summary (what Responses clients
    display); only Responses' own encrypted_content is kept."""
    item = {"id": item_id, "type": ITEM_REASONING,
            "summary": [{"type": PART_SUMMARY_TEXT, "text": text}] if text else []}
    if origin == NAME and signature:
        item["encrypted_content"] = signature
    return item


def message_item(item_id: str, text: str, status: str = STATUS_COMPLETED) -> dict:
    return {"id": item_id, "type": ITEM_MESSAGE, "status": status, "role": ROLE_ASSISTANT,
            "content": [{"type": PART_OUTPUT_TEXT, "text": text, "annotations": [], "logprobs": []}]}


def call_item(item_id: str, call: ToolCall, tool: Tool | None, status: str = STATUS_COMPLETED) -> dict:
    """A call as the client sent its tool (`client_tool`): a custom call's raw input, a namespaced call's own
    name and namespace."""
    name = tool.name_in_namespace if tool is not None and tool.namespace is not None else call.name
    namespace = {"namespace": tool.namespace} if tool is not None and tool.namespace is not None else {}
    if tool is not None and tool.custom_format is not None:
        return {"id": item_id, "type": ITEM_CUSTOM_CALL, "call_id": call.id,  # (no status: the type has none)
                "input": custom_input(call.arguments), "name": name, **namespace}
    return {"id": item_id, "type": ITEM_FUNCTION_CALL, "status": status, "arguments": call.arguments,
            "call_id": call.id, "name": name, **namespace}


def _output(answer: Answer, response_id: str, request: Request) -> list[dict]:
    out: list[dict] = []
    for part in answer.parts:
        if isinstance(part, Text) and out and out[-1]["type"] == ITEM_MESSAGE:
            out[-1]["content"][0]["text"] += part.text
        elif isinstance(part, Text):
            out.append(message_item(output_item_id("msg", response_id, len(out)), part.text))
        elif isinstance(part, Reasoning):
            item_id = part.id if part.origin == NAME and part.id else output_item_id("rs", response_id, len(out))
            out.append(reasoning_item(item_id, part.text, part.signature, part.origin))
        elif isinstance(part, ToolCall):
            out.append(call_item(output_item_id("fc", response_id, len(out)), part, client_tool(request, part.name)))
    return out


def response_object(response_id: str, model: str, created: int, request: Request) -> dict:
    """A response object with the request's settings echoed, as the API returns it."""
    effort = effort_for(request.reasoning) if request.reasoning is not None else None
    return {
        "id": response_id, "object": "response", "created_at": created, "status": STATUS_IN_PROGRESS,
        "background": False, "error": None, "incomplete_details": None, "instructions": request.system,
        "max_output_tokens": request.max_tokens, "model": model or request.model, "output": [],
        "parallel_tool_calls": request.parallel_tool_calls is not False, "previous_response_id": None,
        "reasoning": {"effort": effort, "summary": None},
        "temperature": request.temperature if request.temperature is not None else 1.0,
        "text": {"format": {"type": "text"}}, "tool_choice": tool_choice(request),
        "tools": tools(request), "top_p": request.top_p if request.top_p is not None else 1.0,
        "truncation": "disabled", "usage": None, "metadata": {},
    }


def response_id_for(source_id: str) -> str:
    if not source_id:
        return SYNTHETIC_ID
    return source_id if source_id.startswith("resp_") else f"resp_{source_id}"


def close_response(response: dict, finish: str, usage: Usage) -> dict:
    if finish in (FINISH_LENGTH, FINISH_CONTENT_FILTER):
        reason = REASON_MAX_OUTPUT_TOKENS if finish == FINISH_LENGTH else REASON_CONTENT_FILTER
        return {**response, "status": STATUS_INCOMPLETE, "incomplete_details": {"reason": reason},
                "usage": usage_from_ir(usage)}
    return {**response, "status": STATUS_COMPLETED, "usage": usage_from_ir(usage)}


def answer_from_ir(answer: Answer, request: Request) -> dict:
    response_id = response_id_for(answer.id)
    response = response_object(response_id, answer.model, answer.created, request)
    response["output"] = _output(answer, response_id, request)
    return close_response(response, answer.finish, answer.usage)


def error_from_ir(error: Error) -> tuple[int, bytes]:
    return error.status, dumps({"error": openai_error(error.status, error.message, error.kind)})

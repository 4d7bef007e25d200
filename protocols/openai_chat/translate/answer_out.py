"""A unified answer, usage and error written as the OpenAI Chat Completions client reads them."""

from __future__ import annotations

from protocols.errors import openai_error
from protocols.openai_chat.stream import COMPLETION_OBJECT
from protocols.openai_chat.translate.request_out import assistant_message
from protocols.openai_chat.translate.vocabulary import (
    FINISH_TO,
    REASONING_KEY,
    SYNTHETIC_ID,
    TOOL_TYPE_CUSTOM,
)
from protocols.sse import dumps
from protocols.translate.tools import client_tool, custom_input
from protocols.unified import ROLE_ASSISTANT, Answer, Message, Reasoning, Request, Usage, client_finish
from protocols.unified_stream import Error


def usage_from_ir(usage: Usage) -> dict:
    prompt = {"cached_tokens": usage.cache_read_tokens}
    if usage.cache_write_tokens:
        prompt["cache_write_tokens"] = usage.cache_write_tokens
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": prompt,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _client_call(call: dict, request: Request) -> dict:
    """A call of a client's custom tool as the custom call it expects."""
    tool = client_tool(request, call["function"]["name"])
    if tool is None or tool.custom_format is None:
        return call
    return {"id": call["id"], "type": TOOL_TYPE_CUSTOM,
            "custom": {"name": tool.name, "input": custom_input(call["function"]["arguments"])}}


def _message_from_ir(answer: Answer, request: Request) -> dict:
    message = assistant_message(Message(ROLE_ASSISTANT, list(answer.parts)))
    if "tool_calls" in message:
        message["tool_calls"] = [_client_call(c, request) for c in message["tool_calls"]]
    reasoning = "".join(p.text for p in answer.parts if isinstance(p, Reasoning))
    if reasoning:  # answers carry any vendor's reasoning text (signatures are dropped)
        message[REASONING_KEY] = reasoning
    return {**message, "refusal": None, "annotations": []}


def answer_from_ir(answer: Answer, request: Request) -> dict:
    finish = client_finish(answer.finish, bool(answer.tool_calls()))
    return {
        "id": answer.id or SYNTHETIC_ID,
        "object": COMPLETION_OBJECT,
        "created": answer.created,
        "model": answer.model or request.model,
        "choices": [{"index": 0, "message": _message_from_ir(answer, request), "logprobs": None,
                     "finish_reason": FINISH_TO.get(finish, "stop")}],
        "usage": usage_from_ir(answer.usage),
    }


def error_from_ir(error: Error) -> tuple[int, bytes]:
    return error.status, dumps({"error": openai_error(error.status, error.message, error.kind)})


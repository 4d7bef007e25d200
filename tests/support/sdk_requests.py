"""Whether a request body is well-formed by the official SDK's own request types."""

from collections.abc import Iterator

import pydantic
from anthropic.types import message_create_params
from google.genai import types as genai_types
from openai.types.chat import completion_create_params
from openai.types.responses import response_create_params

CHAT_PARAMS = pydantic.TypeAdapter(completion_create_params.CompletionCreateParamsStreaming)
RESPONSES_PARAMS = pydantic.TypeAdapter(response_create_params.ResponseCreateParamsStreaming)
ANTHROPIC_PARAMS = pydantic.TypeAdapter(message_create_params.MessageCreateParamsStreaming)


def _consume(value):
    """Walk a validated value: pydantic validates iterables lazily, as they are consumed."""
    if isinstance(value, dict):
        return {k: _consume(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, Iterator)) or type(value).__name__ == "ValidatorIterator":
        return [_consume(v) for v in value]
    return value


def sdk_accepts(protocol: str, body: dict) -> None:
    """The request body is well-formed by the official SDK's own request types (raises if not)."""
    if protocol == "openai_chat":
        _consume(CHAT_PARAMS.validate_python({**body, "stream": True}))
    elif protocol == "openai_responses":
        _consume(RESPONSES_PARAMS.validate_python({**body, "stream": True}))
    elif protocol == "anthropic_messages":
        _consume(ANTHROPIC_PARAMS.validate_python({**body, "stream": True}))
    else:
        for content in body["contents"]:
            genai_types.Content.model_validate(content)
        for tool in body.get("tools", ()):
            genai_types.Tool.model_validate(tool)
        genai_types.ToolConfig.model_validate(body.get("toolConfig") or {})
        genai_types.GenerationConfig.model_validate(body.get("generationConfig") or {})
        genai_types.Content.model_validate(body.get("systemInstruction") or {})

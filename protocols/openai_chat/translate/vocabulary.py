"""OpenAI Chat Completions: the names and codes both directions of its translator share."""

from __future__ import annotations

from protocols.openai_chat.stream import REASONING_KEYS
from protocols.unified import FINISH_CONTENT_FILTER, FINISH_LENGTH, FINISH_STOP, FINISH_TOOL_CALLS

NAME = "openai_chat"
TOOL_TYPE_CUSTOM = "custom"
PATH = "/chat/completions"
SYNTHETIC_ID = "chatcmpl-rotator"
REASONING_KEY = REASONING_KEYS[0]  # reasoning_content (DeepSeek), the default the docs recommend emitting
FORMAT_JSON_SCHEMA = "json_schema"
FORMAT_JSON_OBJECT = "json_object"

FINISH_FROM = {
    "stop": FINISH_STOP,
    "length": FINISH_LENGTH,
    "tool_calls": FINISH_TOOL_CALLS,
    "function_call": FINISH_TOOL_CALLS,
    "content_filter": FINISH_CONTENT_FILTER,
}
FINISH_TO = {FINISH_STOP: "stop", FINISH_LENGTH: "length", FINISH_TOOL_CALLS: "tool_calls",
             FINISH_CONTENT_FILTER: "content_filter"}

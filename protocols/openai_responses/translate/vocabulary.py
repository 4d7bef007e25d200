"""OpenAI Responses: the names and codes both directions of its translator share."""

from __future__ import annotations

# The translator's names too.
from protocols.openai_responses.vocabulary import CUSTOM_INPUT_DELTA as CUSTOM_INPUT_DELTA
from protocols.openai_responses.vocabulary import ITEM_CUSTOM_CALL as ITEM_CUSTOM_CALL

NAME = "openai_responses"
PATH = "/responses"
SYNTHETIC_ID = "resp_rotator"
REASON_CONTENT_FILTER = "content_filter"
SUMMARY_SEPARATOR = "\n\n"  # between the parts of a reasoning summary, once they are one text
INPUT_TEXT = "input_text"
INPUT_IMAGE = "input_image"
ITEM_FUNCTION_CALL_OUTPUT = "function_call_output"
ITEM_CUSTOM_CALL_OUTPUT = "custom_tool_call_output"
TOOL_FUNCTION = "function"
TOOL_CUSTOM = "custom"
FORMAT_JSON_SCHEMA = "json_schema"  # `text.format.type`
FORMAT_JSON_OBJECT = "json_object"

# Stream events both the decoder and the encoder name (the others are in protocols/openai_responses/stream.py).
SUMMARY_PART_ADDED = "response.reasoning_summary_part.added"

"""OpenAI Responses' own names, as its stream and answers spell them: its event types, the statuses and reasons of a
response, its item and content part types, its error codes (protocols/openai_responses/stream.py reads them; its
translator, translate/, writes them too)."""

from __future__ import annotations

PATH_SUFFIX = "/responses"

CREATED = "response.created"
IN_PROGRESS = "response.in_progress"
QUEUED = "response.queued"
COMPLETED = "response.completed"
INCOMPLETE = "response.incomplete"
FAILED = "response.failed"
ERROR = "error"
OUTPUT_ITEM_ADDED = "response.output_item.added"
OUTPUT_ITEM_DONE = "response.output_item.done"
TEXT_DONE = "response.output_text.done"
PART_DONE = "response.content_part.done"
CONTENT_PART_ADDED = "response.content_part.added"
OUTPUT_TEXT_DELTA = "response.output_text.delta"
REFUSAL_DELTA = "response.refusal.delta"
ARGUMENTS_DELTA = "response.function_call_arguments.delta"
CUSTOM_INPUT_DELTA = "response.custom_tool_call_input.delta"
SUMMARY_TEXT_DELTA = "response.reasoning_summary_text.delta"
REASONING_TEXT_DELTA = "response.reasoning_text.delta"

PRELUDE = frozenset({CREATED, IN_PROGRESS, QUEUED})
# Structure that opens an empty message or reasoning item carries no token yet: a stall after it is still retried.
EMPTY_OPENINGS = frozenset({CONTENT_PART_ADDED, "response.reasoning_summary_part.added"})
EMPTY_ITEMS = frozenset({"message", "reasoning"})
TERMINAL = frozenset({COMPLETED, INCOMPLETE, FAILED, ERROR})
FAILURES = frozenset({FAILED, ERROR})

RESPONSE_EVENTS = "response."  # the prefix of the API's own event types (besides `error`)

STATUS_IN_PROGRESS = "in_progress"
STATUS_INCOMPLETE = "incomplete"
STATUS_FAILED = "failed"
REASON_MAX_OUTPUT_TOKENS = "max_output_tokens"
SERVER_ERROR_CODE = "server_error"
RATE_LIMITED_CODE = "rate_limit_exceeded"

ITEM_MESSAGE = "message"
ITEM_FUNCTION_CALL = "function_call"
ITEM_CUSTOM_CALL = "custom_tool_call"
CALL_INPUT = {ITEM_FUNCTION_CALL: "arguments", ITEM_CUSTOM_CALL: "input"}  # what streams into a call item
ITEM_REASONING = "reasoning"
PART_OUTPUT_TEXT = "output_text"
PART_REFUSAL = "refusal"
PART_SUMMARY_TEXT = "summary_text"
PART_REASONING_TEXT = "reasoning_text"
SYNTHETIC_ID = "resp_rotator"

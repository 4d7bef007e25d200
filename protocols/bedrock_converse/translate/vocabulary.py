"""Amazon Bedrock Converse: the names and codes both directions of its translator share."""

from __future__ import annotations

from protocols.unified import FINISH_CONTENT_FILTER, FINISH_LENGTH, FINISH_STOP, FINISH_TOOL_CALLS

NAME = "bedrock_converse"
FAMILY = "bedrock"
IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")
S3_SCHEME = "s3://"
STATUS_ERROR = "error"
FORMAT_JSON_SCHEMA = "json_schema"

STOP_FROM: dict[object, str] = {  # looked up by the stopReason as sent
    "end_turn": FINISH_STOP,
    "stop_sequence": FINISH_STOP,
    "tool_use": FINISH_TOOL_CALLS,
    "max_tokens": FINISH_LENGTH,
    "model_context_window_exceeded": FINISH_LENGTH,
    "guardrail_intervened": FINISH_CONTENT_FILTER,
    "content_filtered": FINISH_CONTENT_FILTER,
    # Lossy: a malformed output or tool call is told as a plain stop.
    "malformed_model_output": FINISH_STOP,
    "malformed_tool_use": FINISH_STOP,
}
STOP_TO = {FINISH_STOP: "end_turn", FINISH_TOOL_CALLS: "tool_use", FINISH_LENGTH: "max_tokens",
           FINISH_CONTENT_FILTER: "content_filtered"}


def stop_reason(finish: str, stop_sequence: str | None) -> str:
    if finish == FINISH_STOP and stop_sequence:
        return "stop_sequence"
    return STOP_TO.get(finish, "end_turn")


def media_type(image_format: object) -> str:
    """An image block's `format` (`png`) as a media type."""
    return f"image/{image_format if isinstance(image_format, str) and image_format else 'jpeg'}"


def image_format(media: str | None) -> str:
    """A media type as an image block's `format`: one of Converse's four (jpeg for another)."""
    kind = (media or "").removeprefix("image/").lower()
    kind = "jpeg" if kind == "jpg" else kind
    return kind if kind in IMAGE_FORMATS else "jpeg"

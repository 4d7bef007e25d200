"""Gemini generateContent: the names and codes both directions of its translator share."""

from __future__ import annotations

from typing import Any

from protocols.gemini.stream import FINISH_MAX_TOKENS
from protocols.unified import FINISH_CONTENT_FILTER, FINISH_LENGTH

NAME = "gemini"
FAMILY = "gemini"
JSON_MIME = "application/json"
FINISH_STOP_NAME = "STOP"
FINISH_SAFETY = "SAFETY"
OUTPUT_KEY = "output"
ERROR_KEY = "error"
FINISH_TO = {FINISH_LENGTH: FINISH_MAX_TOKENS, FINISH_CONTENT_FILTER: FINISH_SAFETY}


def get_field(obj: dict, camel: str, snake: str | None = None) -> Any:
    """A field by its lowerCamelCase name, or the snake_case one the proto-JSON parser also takes."""
    value = obj.get(camel)
    if value is None:
        value = obj.get(snake or "".join(f"_{c.lower()}" if c.isupper() else c for c in camel))
    return value

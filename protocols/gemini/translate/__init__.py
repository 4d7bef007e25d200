"""Gemini generateContent <-> the unified representation: its `TRANSLATOR`, built from one module per direction
and kind (see `protocols.translate`).

Gemini names the model and streaming in the path, not the body: `request_to_ir` takes the model from the caller,
and `endpoint` (in `request_out`) gives the path to call. Its JSON is lowerCamelCase; requests in snake_case are
read as well.
"""

from __future__ import annotations

from protocols.gemini.translate.answer_in import answer_to_ir
from protocols.gemini.translate.answer_out import answer_from_ir, error_from_ir
from protocols.gemini.translate.request_in import request_to_ir
from protocols.gemini.translate.request_out import endpoint, request_from_ir
from protocols.gemini.translate.stream_in import GeminiDecoder
from protocols.gemini.translate.stream_out import GeminiEncoder
from protocols.gemini.translate.vocabulary import NAME
from protocols.translate.base import Translator

TRANSLATOR = Translator(
    NAME, request_to_ir, request_from_ir, endpoint, answer_to_ir, answer_from_ir,
    GeminiDecoder, GeminiEncoder, error_from_ir, answer_members=("candidates", "promptFeedback"),
)

__all__ = ["TRANSLATOR"]

"""OpenAI Responses <-> the unified representation: its `TRANSLATOR`, built from one module per direction and kind
(see `protocols.translate`)."""

from __future__ import annotations

from protocols.openai_responses.translate.answer_in import answer_to_ir
from protocols.openai_responses.translate.answer_out import answer_from_ir, error_from_ir
from protocols.openai_responses.translate.request_in import request_to_ir
from protocols.openai_responses.translate.request_out import request_from_ir
from protocols.openai_responses.translate.stream_in import ResponsesDecoder
from protocols.openai_responses.translate.stream_out import ResponsesEncoder
from protocols.openai_responses.translate.vocabulary import NAME, PATH
from protocols.translate.base import Translator, fixed_endpoint

TRANSLATOR = Translator(
    NAME, request_to_ir, request_from_ir, fixed_endpoint(PATH), answer_to_ir, answer_from_ir,
    ResponsesDecoder, ResponsesEncoder, error_from_ir, answer_members=("output",),
)

__all__ = ["TRANSLATOR"]

"""OpenAI Chat Completions <-> the unified representation: its `TRANSLATOR`, built from one module per direction
and kind (see `protocols.translate`)."""

from __future__ import annotations

from protocols.openai_chat.translate.answer_in import answer_to_ir
from protocols.openai_chat.translate.answer_out import answer_from_ir, error_from_ir
from protocols.openai_chat.translate.request_in import request_to_ir
from protocols.openai_chat.translate.request_out import request_from_ir
from protocols.openai_chat.translate.stream_in import ChatDecoder
from protocols.openai_chat.translate.stream_out import ChatEncoder
from protocols.openai_chat.translate.vocabulary import NAME, PATH
from protocols.translate.base import Translator, fixed_endpoint

TRANSLATOR = Translator(
    NAME, request_to_ir, request_from_ir, fixed_endpoint(PATH), answer_to_ir, answer_from_ir,
    ChatDecoder, ChatEncoder, error_from_ir, answer_members=("choices",),
)

__all__ = ["TRANSLATOR"]

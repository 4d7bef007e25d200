"""Anthropic Messages <-> the unified representation: its `TRANSLATOR`, built from one module per direction and
kind (see `protocols.translate`)."""

from __future__ import annotations

from protocols.anthropic_messages.translate.answer_in import answer_to_ir
from protocols.anthropic_messages.translate.answer_out import answer_from_ir, error_from_ir
from protocols.anthropic_messages.translate.request_in import request_to_ir
from protocols.anthropic_messages.translate.request_out import request_from_ir
from protocols.anthropic_messages.translate.stream_in import MessagesDecoder
from protocols.anthropic_messages.translate.stream_out import MessagesEncoder
from protocols.anthropic_messages.translate.vocabulary import EFFORTS, NAME, PATH
from protocols.translate.base import Translator, fixed_endpoint

TRANSLATOR = Translator(
    NAME, request_to_ir, request_from_ir, fixed_endpoint(PATH), answer_to_ir, answer_from_ir,
    MessagesDecoder, MessagesEncoder, error_from_ir, EFFORTS, answer_members=("content",),
)

__all__ = ["TRANSLATOR"]

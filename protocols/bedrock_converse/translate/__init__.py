"""Amazon Bedrock Converse <-> the unified representation: its `TRANSLATOR`, built from one module per direction and
kind (see `protocols.translate`).

Converse names the model and streaming in the path, not the body: `request_to_ir` takes the model from the caller,
and `endpoint` (in `request_out`) gives the path to call. Its streams are event stream frames, not SSE: the decoder
reads the events `protocols.eventstream.EventStreamParser` hands out, and the encoder writes frames.
"""

from __future__ import annotations

from protocols.bedrock_converse.translate.answer_in import answer_to_ir
from protocols.bedrock_converse.translate.answer_out import answer_from_ir, error_from_ir
from protocols.bedrock_converse.translate.request_in import request_to_ir
from protocols.bedrock_converse.translate.request_out import endpoint, request_from_ir
from protocols.bedrock_converse.translate.stream_in import ConverseDecoder
from protocols.bedrock_converse.translate.stream_out import ConverseEncoder
from protocols.bedrock_converse.translate.vocabulary import NAME
from protocols.translate.base import Translator

TRANSLATOR = Translator(
    NAME, request_to_ir, request_from_ir, endpoint, answer_to_ir, answer_from_ir,
    ConverseDecoder, ConverseEncoder, error_from_ir, answer_members=("output",),
)

__all__ = ["TRANSLATOR"]

"""Forced upstream streaming: which upstream answers say that a model cannot be streamed.

Some models or accounts refuse `stream: true` (OpenAI answers 400 "Unsupported value: 'stream' does not support
true with this model", or asks for a verified organization "to stream this model"; OpenAI-compatible vendors
reject `stream_options`). Such a request is sent again as the client sent it, and its model is remembered.
"""

from __future__ import annotations

from protocols.vendor_errors import REFUSAL_STATUS, VendorError

STREAM_WORD = "stream"  # also matches "streaming", "stream_options"


def refuses_stream(error: VendorError) -> bool:
    """Whether an upstream error answer to a streamed request (as its protocol's reader read it) is about
    streaming itself: a 400 whose message or parameter names it."""
    return error.status == REFUSAL_STATUS and STREAM_WORD in error.text.lower()

"""OpenAI Chat's usage: the usage chunk at the end of a stream, `usage` of an answer.

A Chat client that streams without `stream_options.include_usage` gets no usage chunk; Rotator asks for one upstream
all the same and takes it, and the `"usage":null` the vendor then adds to every chunk, out of what the client
receives (`HidingChatSniffer`).
"""

from __future__ import annotations

import re

from protocols.base import count, member
from protocols.events import Event
from protocols.sse import load_object
from protocols.unified import Usage
from protocols.usage import UsageSniffer

NULL_USAGE = b',"usage":null'
NULL_USAGE_END = ',"usage":null}'
_NULL_USAGE_BLOCK_END = NULL_USAGE_END.encode() + b"\n\n"
SPACED_NULL_USAGE = re.compile(rb',\s*"usage"\s*:\s*null(?=\s*[,}])|"usage"\s*:\s*null\s*,')


def usage_to_ir(usage: dict) -> Usage:
    """Lossy: audio and prediction token counts are dropped."""
    prompt = member(usage, "prompt_tokens_details")
    return Usage(
        input_tokens=count(usage, "prompt_tokens"),
        output_tokens=count(usage, "completion_tokens"),
        reasoning_tokens=count(member(usage, "completion_tokens_details"), "reasoning_tokens"),
        # DeepSeek reports cache hits as prompt_cache_hit_tokens.
        cache_read_tokens=count(prompt, "cached_tokens") or count(usage, "prompt_cache_hit_tokens"),
        cache_write_tokens=count(prompt, "cache_write_tokens"),
    )


class ChatSniffer(UsageSniffer):
    """The usage chunk at the end (or any chunk with a usage: some compatible vendors put it on every one)."""

    mark = '"prompt_tokens"'
    to_usage = staticmethod(usage_to_ir)
    asking = "stream_options"

    @classmethod
    def can_ask(cls, body: object) -> bool:
        """A stream request without `stream_options.include_usage` (a malformed `stream_options` is left for the
        vendor to answer)."""
        options = body.get(cls.asking) if isinstance(body, dict) else None
        return options is None or isinstance(options, dict) and options.get("include_usage") is not True

    def forward(self, block: bytes) -> bytes | None:
        # (`mark` alone, without a "usage" key, is never read as usage: see usage_of; find, not `in`:
        # protocols/sse.py says why)
        return block if block.find(b'"usage"') < 0 else None


class HidingChatSniffer(ChatSniffer):
    """For a client that did not ask for usage: takes the usage-only chunk and the `"usage":null` fields out.

    The vendor's compact JSON ends every other chunk with `,"usage":null}`: that is cut from the tail without a
    search through the chunk; any other place or spacing takes the slower way."""

    def forward(self, block: bytes) -> bytes | None:
        if block.endswith(_NULL_USAGE_BLOCK_END):
            block = block[: -len(_NULL_USAGE_BLOCK_END)] + b"}\n\n"
        return block if block.find(b'"usage"') < 0 else None

    def tap(self, event: Event) -> bytes:
        raw = self._feed(event)
        data = event.data
        if data is None:
            return raw
        if data.endswith(NULL_USAGE_END):
            at = raw.rfind(NULL_USAGE, len(raw) - len(NULL_USAGE) - 8)  # before "}" and the blank line
            return raw[:at] + raw[at + len(NULL_USAGE):] if at >= 0 else raw
        if '"usage"' not in data:
            return raw
        if self.mark in data:
            self.keep(data)
            chunk = load_object(data)
            if chunk is not None and chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict):
                return raw[: -len(event.raw)] if raw.endswith(event.raw) else raw
        return SPACED_NULL_USAGE.sub(b"", raw.replace(NULL_USAGE, b""))


ChatSniffer.hiding = HidingChatSniffer

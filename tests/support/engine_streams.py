"""Each protocol's canned streams for the engine's tests, and what the tests read of an answer."""

import asyncio
import re

import protocols
from tests.support import samples
from tests.support.engine_harness import Stream, events_of

TEXT = {
    "openai_chat": samples.CHAT_TEXT,
    "openai_responses": samples.RESPONSES_TEXT,
    "anthropic_messages": samples.ANTHROPIC_TEXT,
    "gemini": samples.GEMINI_TEXT,
}
TOOL = {
    "openai_chat": samples.CHAT_TOOL_CALLS,
    "openai_responses": samples.RESPONSES_TOOL_CALL,
    "anthropic_messages": samples.ANTHROPIC_TOOL_USE,
    "gemini": samples.GEMINI_FUNCTION_CALL,
}
TRUNCATED = {
    "openai_chat": rb'"finish_reason": ?"length"',
    "openai_responses": rb"event: response\.incomplete\n.*max_output_tokens",
    "anthropic_messages": rb'"stop_reason": ?"max_tokens".*event: message_stop',
    "gemini": rb'"finishReason": ?"MAX_TOKENS"',
}
TOOL_FINISH = {
    "openai_chat": rb'"finish_reason": ?"tool_calls"',
    "openai_responses": rb"response\.completed",
    "anthropic_messages": rb'"stop_reason": ?"tool_use"',
    "gemini": rb"functionCall",
}
ALL = list(TEXT)


def first_token_index(protocol: str, body: bytes) -> int:
    repairer = protocols.get(protocol).repairer({})
    for i, e in enumerate(protocols.SSEParser().feed(body)):
        repairer.feed(e)
        if repairer.started:
            return i
    raise AssertionError("no content")


def content_prefix(protocol: str, body: bytes, extra: int = 1) -> list[bytes]:
    """The events up to and including `extra` content-bearing events."""
    return events_of(body)[: first_token_index(protocol, body) + extra]


def assert_truncated(protocol: str, out: bytes) -> None:
    assert re.search(TRUNCATED[protocol], out, re.S), out[-400:]


def kinds(job) -> list[str]:
    return [n["kind"] for n in job.notes]


def preamble(protocol: str) -> list[bytes]:
    """What the vendor sends before the first token (Anthropic's message_start with the input count, ...)."""
    return events_of(TEXT[protocol])[: first_token_index(protocol, TEXT[protocol])]


class Watched(Stream):
    """An upstream body that records when it was closed (the loop's time)."""

    closed_at: float | None = None

    async def aclose(self) -> None:
        if self.closed_at is None:
            self.closed_at = asyncio.get_running_loop().time()
        await super().aclose()

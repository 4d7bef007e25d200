"""The wire changes through 2026-11 (docs: wire-2026-11.md) that the translators and repairers must follow: each test
is one item of that addendum a client would otherwise see go wrong."""

import json

import pytest

import protocols.translate as translate
from protocols.unified import Request
from tests.support.streams import parse

CHAT_REQUEST = {"model": "m", "messages": [{"role": "user", "content": "Write the whole report."}]}


def sse(*payloads: dict, named: bool = False) -> bytes:
    return b"".join((f"event: {p['type']}\n".encode() if named else b"") + b"data: " + json.dumps(p).encode() + b"\n\n"
                    for p in payloads)


# --- Gemini's CONTINUATION stop (a cut of the per-request token limit, resumable only by a Gemini client's token)

def _continuation_chunk() -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": "The first half"}]},
                            "finishReason": "CONTINUATION", "continuationToken": "Q0FGRQ==", "index": 0}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8}}


@pytest.mark.parametrize(("client", "cap"), [("openai_chat", "length"), ("anthropic_messages", "max_tokens"),
                                             ("openai_responses", "max_output_tokens")])
def test_a_gemini_continuation_stop_reaches_another_protocols_client_as_a_token_cap_not_a_filter(client, cap):
    request = translate.request_to_ir("openai_chat", CHAT_REQUEST)
    answer = translate.translate_answer(_continuation_chunk(), "gemini", client, request)
    said = {"openai_chat": lambda a: a["choices"][0]["finish_reason"],
            "anthropic_messages": lambda a: a["stop_reason"],
            "openai_responses": lambda a: (a.get("incomplete_details") or {}).get("reason")}[client](answer)
    assert said == cap

    tr = translate.stream_translator("gemini", client, Request(model="m", stream=True))
    out = b"".join(tr.feed(e) for e in parse(sse(_continuation_chunk())))
    assert tr.complete and cap.encode() in out and b"content_filter" not in out and b"refusal" not in out


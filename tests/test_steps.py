"""The steps of a transformed request (rewrite/plugins/steps.py): what the engine records for a request it changed (and
not for one it sent as it came), bounded, with the key masked; and how the LLM view shows them (rewrite/inspection/views.py)."""

from __future__ import annotations

import asyncio
import json

from rewrite.inspection import views
from rewrite.inspection.views import Facts
from rewrite.plugins.steps import MAX_BODY, Capture, Step, record
from rewrite.pool import mask
from tests.support import samples
from tests.support.engine_harness import Upstream, run, sse

KEY = "sk-ant-engine-key-0001"
ANTHROPIC_REQUEST = {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
CHAT_REQUEST = {"model": "deepseek-chat", "stream": True, "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "hi"}]}


def plain(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.split("\n"))


# -- the engine ------------------------------------------------------------------------------------------------


def test_a_request_sent_as_it_came_records_no_step():
    upstream = Upstream([lambda r: sse([samples.ANTHROPIC_TEXT])])
    _, job = asyncio.run(run("anthropic_messages", upstream, body={**ANTHROPIC_REQUEST, "stream": True}, keys=(KEY,)))
    assert upstream.seen and "steps" not in job.records


def test_a_forced_stream_records_the_request_sent_with_its_key_masked_and_the_raw_stream():
    upstream = Upstream([lambda r: sse([samples.ANTHROPIC_TEXT])])
    responder, job = asyncio.run(run("anthropic_messages", upstream, stream=False, body=ANTHROPIC_REQUEST,
                                     keys=(KEY,)))
    assert responder.status == 200 and json.loads(responder.body)["type"] == "message"  # folded back into JSON
    [step] = job.records["steps"]
    sent = upstream.seen[0]
    assert step["target"] == "anthropic/claude-haiku-4-5" and step["protocol"] == "anthropic_messages"
    assert step["changes"] == ["sent as a stream (force_upstream_stream), the answer folded back into JSON"]
    assert step["request"]["url"] == str(sent.url)
    assert step["request"]["body"] == sent.content.decode() and json.loads(sent.content)["stream"] is True
    assert ["x-api-key", mask(KEY)] in step["request"]["headers"]
    assert step["answer"] == {"status": 200, "content_type": "text/event-stream",
                              "body": samples.ANTHROPIC_TEXT.decode(), "size": len(samples.ANTHROPIC_TEXT),
                              "left_out": 0}
    assert KEY not in json.dumps(step)


def test_a_capture_keeps_the_head_of_a_long_answer_and_counts_the_rest():
    capture = Capture(200, "text/event-stream")
    for _ in range(3):
        capture.add(b"x" * 40_000)
    answer = record(Step("t", "openai_chat", [], answer=capture))["answer"]
    assert (len(answer["body"]), answer["size"], answer["left_out"]) == (MAX_BODY, 120_000, 120_000 - MAX_BODY)


# -- the view --------------------------------------------------------------------------------------------------


def translated_flow(answer: bytes) -> Facts:
    """An Anthropic stream served by a Chat target, as the addon records it."""
    capture = Capture(200, "text/event-stream")
    capture.add(answer)
    step = Step("deepseek/deepseek-chat", "openai_chat", ["translated from anthropic_messages to openai_chat"],
                url="https://api.deepseek.com/v1/chat/completions",
                headers=[("content-type", "application/json"), ("authorization", f"Bearer {mask('sk-deepseek-0001')}")],
                body=json.dumps(CHAT_REQUEST).encode(), answer=capture)
    rotator = {"provider": "deepseek", "protocol": "anthropic_messages", "key": mask("sk-deepseek-0001"),
               "steps": [record(step)]}
    client = json.dumps({**ANTHROPIC_REQUEST, "stream": True}).encode()
    return Facts("anthropic_messages", "/v1/messages", client, 200, "text/event-stream", samples.ANTHROPIC_TEXT,
                 rotator, 100.0, 101.0)


def test_the_view_shows_each_step_of_a_translated_request():
    facts = translated_flow(samples.CHAT_TEXT)
    for text in (plain(views.render_request(facts)), plain(views.render_response(facts))):
        assert ("─── steps: what Rotator changed on the way ───\n"
                "1. the request as the client sent it:\n"
                "     {\n"
                '       "model": "claude-haiku-4-5",\n') in text, text
        assert ("2. as it left Rotator for deepseek/deepseek-chat (OpenAI Chat Completions):\n"
                "     - translated from anthropic_messages to openai_chat\n"
                "     POST https://api.deepseek.com/v1/chat/completions\n"
                "     content-type: application/json\n"
                "     authorization: Bearer …0001\n"
                "     {\n"
                '       "model": "deepseek-chat",\n'
                '       "stream": true,\n') in text, text
        raw = "\n".join("     " + line if line else "" for line in samples.CHAT_TEXT.decode().split("\n")).rstrip()
        assert (f"3. deepseek/deepseek-chat's answer, before Rotator translated or rewrote it (status 200 · "
                f"text/event-stream · {len(samples.CHAT_TEXT)} bytes):\n{raw}\n") in text, text
    assert plain(views.render_response(facts)).index("─── answer ───") < text.index("─── steps")


def test_the_view_says_how_much_of_a_long_raw_answer_was_not_kept():
    capture = Capture(200, "text/event-stream")
    capture.add(b"data: " + b"y" * (MAX_BODY + 100) + b"\n\n")
    step = record(Step("t/m", "openai_chat", [], body=b"{}", answer=capture))
    text = plain(views.render_response(Facts("openai_chat", "/v1/chat/completions", b"{}", 200, "text/event-stream",
                                             samples.CHAT_TEXT, {"steps": [step]})))
    assert f"more characters not shown]\n     [rotator: 108 of {MAX_BODY + 108} bytes were not kept]\n" in text, text

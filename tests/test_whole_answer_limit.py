"""limits.max_request_body on a call answered in its flow (addons/whole_answers.py): a body whose headers did not say
its size (chunked, or HTTP/2 without content-length) is held whole by mitmproxy, and is answered 413 in its
protocol's shape like one that said it; nothing goes upstream."""

import json

from addons.interception import Interception
from addons.websocket import WebSocketUpstream
from rewrite.config import parse
from rewrite.engine import Engine
from tests.test_interception_addon import chat_flow

LIMIT = 1000
# (an upstream nothing listens on: a request sent to it would come back 502)
CONFIG = ("providers: {openai: {base_url: 'http://127.0.0.1:1/v1', keys: [sk-pool-secret-1]}}\n"
          f"limits: {{max_request_body: {LIMIT}}}\n")


async def answered(content: str):
    engine = Engine(parse(CONFIG))
    interception = Interception(engine, WebSocketUpstream(engine))
    flow = chat_flow(("content-type", "application/json"), ("transfer-encoding", "chunked"))
    flow.request.raw_content = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}).encode()
    del flow.request.headers["content-length"]
    try:
        interception.requestheaders(flow)
        await interception.request(flow)
    finally:
        engine.server.close()
    return flow.response


async def test_a_chunked_body_past_the_limit_is_413_when_its_answer_is_asked_whole():
    # (it went upstream: the client saw the vendor's answer, or here a 502, for a body past the limit)
    response = await answered("x" * 5 * LIMIT)
    assert response.status_code == 413
    error = json.loads(response.content)["error"]
    assert error["code"] == "request_too_large" and f"max_request_body ({LIMIT} bytes)" in error["message"]


async def test_a_chunked_body_within_the_limit_goes_upstream():
    assert (await answered("hi")).status_code == 502  # (sent: nothing listens there)

"""botocore's bedrock-runtime client (what boto3 is) sending to and reading from memory: no sockets, no signing that
matters (fake credentials). It validates a request body against the service model and serializes it, and it reads
a canned answer, stream or error exactly as `client.converse`, `client.converse_stream` and
`client.invoke_model_with_response_stream` do.
"""

from __future__ import annotations

import base64
import functools
import json

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.config import Config

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
_ANSWER: dict = {"status": 200, "headers": {}, "body": b"", "chunk": 1 << 20, "sent": None}


class _Raw:
    """The urllib3 response botocore reads: its body in chunks of `chunk` bytes."""

    def __init__(self, body: bytes, chunk: int) -> None:
        self._body, self._chunk = body, chunk

    def stream(self, *args, **kwargs):
        for i in range(0, len(self._body), self._chunk):
            yield self._body[i:i + self._chunk]

    def read(self, *args, **kwargs) -> bytes:
        return self._body

    def close(self) -> None:
        pass


def _serve(request, **kwargs) -> AWSResponse:
    _ANSWER["sent"] = request
    raw = _Raw(_ANSWER["body"], _ANSWER["chunk"])
    return AWSResponse(request.url, _ANSWER["status"], _ANSWER["headers"], raw)


@functools.cache
def client():
    session = botocore.session.get_session()
    made = session.create_client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                                 aws_secret_access_key="secret", config=Config(retries={"max_attempts": 1}))
    made.meta.events.register("before-send.bedrock-runtime.*", _serve)
    return made


def _answer(body: bytes, status: int, headers: dict | None, chunk: int) -> None:
    content_type = "application/vnd.amazon.eventstream" if status == 200 and body[:1] == b"\x00" else "application/json"
    _ANSWER.update(body=body, status=status, headers={"content-type": content_type, **(headers or {})}, chunk=chunk)


def as_params(value, shape):
    """A JSON body of the wire as boto3's parameters: base64 blobs as bytes, following the service model."""
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: as_params(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [as_params(v, shape.member) for v in value]
    if shape.type_name == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def _call(operation: str, body: dict, model: str) -> dict:
    shape = client().meta.service_model.operation_model(operation).input_shape
    method = getattr(client(), {"Converse": "converse", "ConverseStream": "converse_stream"}[operation])
    return method(modelId=model, **as_params(body, shape))


def sent_body(body: dict, model: str = MODEL, operation: str = "Converse") -> dict:
    """The body botocore sends for a request of these parameters (ParamValidationError if the service model refuses
    them): what a Converse body must equal to be one boto3 could have sent."""
    _answer(json.dumps(CONVERSE_EMPTY).encode(), 200, None, 1 << 20)
    _call(operation, body, model)
    return json.loads(_ANSWER["sent"].body)


CONVERSE_EMPTY = {"output": {"message": {"role": "assistant", "content": []}}, "stopReason": "end_turn",
                  "usage": {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}, "metrics": {"latencyMs": 0}}


def converse(answer: bytes, status: int = 200, headers: dict | None = None) -> dict:
    """`client.converse(...)`: the parsed answer (botocore's ClientError for an error answer)."""
    _answer(answer, status, headers, 1 << 20)
    return _call("Converse", {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}, MODEL)


def converse_stream(answer: bytes, chunk: int = 1 << 20, status: int = 200, headers: dict | None = None) -> list[dict]:
    """`client.converse_stream(...)["stream"]`: every event botocore yields (it raises EventStreamError at an
    exception frame)."""
    _answer(answer, status, headers, chunk)
    response = _call("ConverseStream", {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}, MODEL)
    return list(response["stream"])


def invoke_stream(answer: bytes, chunk: int = 1 << 20) -> list[dict]:
    """`client.invoke_model_with_response_stream(...)["body"]`: every event botocore yields."""
    _answer(answer, 200, None, chunk)
    response = client().invoke_model_with_response_stream(modelId=MODEL, body=b"{}")
    return list(response["body"])


# --- one view of what a Converse client saw, as tests/support/translate_sdk.py's `view`

_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length",
           "content_filtered": "content_filter", "guardrail_intervened": "content_filter"}


def answer_view(answer: dict) -> dict:
    """What a Converse answer (as botocore parsed it) says: text, reasoning, calls, finish, usage (prompt with the
    cache, cache read, output)."""
    content = answer["output"]["message"]["content"]
    usage = answer["usage"]
    cached = usage.get("cacheReadInputTokens", 0) + usage.get("cacheWriteInputTokens", 0)
    calls = [(b["toolUse"]["toolUseId"], b["toolUse"]["name"], b["toolUse"]["input"]) for b in content
             if "toolUse" in b]
    finish = _FINISH.get(answer["stopReason"], answer["stopReason"])
    return {
        "text": "".join(b["text"] for b in content if "text" in b),
        "reasoning": "".join(b["reasoningContent"].get("reasoningText", {}).get("text", "") for b in content
                             if "reasoningContent" in b),
        "calls": calls,
        "finish": "tool_calls" if finish == "stop" and calls else finish,
        "usage": (usage["inputTokens"] + cached, usage.get("cacheReadInputTokens", 0), usage["outputTokens"]),
    }


def stream_answer(events: list[dict]) -> dict:
    """The answer a ConverseStream's events (as botocore yields them) add up to, as a client folds them."""
    blocks: dict[int, dict] = {}
    stop, usage = None, {"inputTokens": 0, "outputTokens": 0}
    for e in events:
        if "contentBlockStart" in e:
            start = e["contentBlockStart"]
            tool = start["start"]["toolUse"]
            blocks[start["contentBlockIndex"]] = {"toolUse": {**tool, "input": ""}}
        elif "contentBlockDelta" in e:
            index, delta = e["contentBlockDelta"]["contentBlockIndex"], e["contentBlockDelta"]["delta"]
            block = blocks.setdefault(index, {})
            if "text" in delta:
                block["text"] = block.get("text", "") + delta["text"]
            elif "toolUse" in delta:
                block["toolUse"]["input"] += delta["toolUse"]["input"]
            elif "reasoningContent" in delta:
                text = block.setdefault("reasoningContent", {}).setdefault("reasoningText", {"text": ""})
                text["text"] += delta["reasoningContent"].get("text", "")
                if "signature" in delta["reasoningContent"]:
                    text["signature"] = delta["reasoningContent"]["signature"]
        elif "messageStop" in e:
            stop = e["messageStop"]["stopReason"]
        elif "metadata" in e:
            usage = e["metadata"]["usage"]
    for block in blocks.values():
        if "toolUse" in block:
            text = block["toolUse"]["input"]
            try:
                block["toolUse"]["input"] = json.loads(text) if text else {}
            except ValueError:
                pass  # a half-written input stays a string, for the test to see
    content = [b for _, b in sorted(blocks.items())]
    return {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop, "usage": usage}

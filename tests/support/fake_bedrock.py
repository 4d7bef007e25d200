"""The fake cloud platform's Amazon Bedrock (tests/support/fake_cloud.py serves it through tests/support/
cloud_dialects.py), as the real one answers:

| call | host | path | answer |
|---|---|---|---|
| InvokeModel | `bedrock-runtime.{region}.amazonaws.com` | `POST /model/{id}/invoke` | Anthropic's message |
| InvokeModelWithResponseStream | | `POST /model/{id}/invoke-with-response-stream` | chunk frames, each one Anthropic event (base64) |
| Converse | | `POST /model/{id}/converse` | a Converse answer |
| ConverseStream | | `POST /model/{id}/converse-stream` | Converse events in frames |
| ListInferenceProfiles | `bedrock.{region}.amazonaws.com` | `GET /inference-profiles` | a few system-defined profiles |

Every request's credential is checked as AWS checks it, before any fault: a SigV4 signature rebuilt from the raw
path, the query, the headers it names and the body, with the secret of its access key id (tests/support/
sigv4_check.py: a byte changed anywhere it covers, or a signature older than five minutes, is answered 403
`InvalidSignatureException`), or a Bedrock API key as a bearer token. An InvokeModel body that names `model` or
`stream`, or lacks `anthropic_version`, is refused as Bedrock refuses it.

Its answers are the fake vendor's Anthropic ones (its faults act on them as on any stream), framed as AWS frames them
(an encoder of their own: tests/support/bedrock_samples.py); a Converse stream is the same answer said in Converse's
events. `Fault.error_after` is an exception frame (`bedrock_exception(...)` names which); a status fault has AWS's
error type in `x-amzn-errortype` (`bedrock_throttled()` is the 429 of "Too many tokens").
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any
from urllib.parse import unquote

from tests.support import fake_vendor as fv
from tests.support.bedrock_samples import EVENT_STREAM, METRICS, aws_frame, bedrock_exception
from tests.support.cloud_auth import CloudAccounts
from tests.support.sigv4_check import refusal

BEDROCK = "bedrock"  # the dialect of its runtime calls (and its control plane's)
PROFILES = "bedrock-inference-profiles"  # the protocol of the control plane's one call
HOST = re.compile(r"^bedrock-runtime\.([a-z0-9-]+)\.amazonaws\.com$")
CONTROL = re.compile(r"^bedrock\.([a-z0-9-]+)\.amazonaws\.com$")
PATH = re.compile(r"^/model/([^/]+)/(invoke|invoke-with-response-stream|converse|converse-stream)$")
THROTTLED = "Too many tokens, please wait before trying again."
ERROR_TYPES = {400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
               408: "ModelTimeoutException", 424: "ModelErrorException", 429: "ThrottlingException",
               500: "InternalServerException", 503: "ServiceUnavailableException"}
CORAL = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
PROFILE_MODELS = ("anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-opus-4-6-v1",
                  "anthropic.claude-haiku-4-5-20251001-v1:0")


def route(method: str, path: str, host: str) -> tuple[str | None, str, str | None] | None:
    """(protocol, dialect, model from the path) of a call to Bedrock's hosts; None for another host."""
    if CONTROL.match(host):
        return (PROFILES if (method, path) == ("GET", "/inference-profiles") else None), BEDROCK, None
    if not HOST.match(host):
        return None
    call = PATH.match(path)
    if call is None or method != "POST":
        return None, BEDROCK, None
    return fv.ANTHROPIC, BEDROCK, unquote(call.group(1))  # (Converse too: the fake's answer, said in Converse)


def converse(rec: fv.Request) -> bool:
    return "/converse" in rec.path


def streams(rec: fv.Request) -> bool:
    """The operation says it, not the body."""
    return rec.path.endswith(("-stream", "-with-response-stream"))


def region_of(rec: fv.Request, host: str) -> str | None:
    m = HOST.match(host) or CONTROL.match(host)
    return m.group(1) if m else None


def error(status: int, message: str) -> tuple[int, dict]:
    """AWS's error answer: its type named in the body too (as `__type`), which botocore reads without the header."""
    return status, {"__type": ERROR_TYPES.get(status, "InternalServerException"), "message": message}


def check(accounts: CloudAccounts, rec: fv.Request, host: str) -> tuple[int, Any] | None:
    """The credential's refusal, as AWS words it; None when AWS takes it."""
    auth = rec.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        if accounts.takes_bedrock_key(auth[7:].strip()):
            return None
        return 403, {"__type": "AccessDeniedException", "message": "Invalid API Key format: Must start with ABSK"}
    target = rec.path + (f"?{rec.query}" if rec.query else "")
    wrong = refusal(rec.method, host, target, list(rec.headers.items()), rec.raw_body, accounts.aws_secrets(),
                    time.time())
    if wrong is None:
        return None
    return 403, {"__type": wrong[0], "message": wrong[1]}


def body_refusal(rec: fv.Request) -> tuple[int, Any] | None:
    """A body Bedrock refuses: an InvokeModel one that names the model or streaming, or lacks its API version."""
    body = rec.body
    if not isinstance(body, dict):
        return error(400, "Malformed input request, please reformat your input and try again.")
    if converse(rec):
        return None if isinstance(body.get("messages"), list) else error(400, "messages: required")
    extra = [k for k in ("model", "stream") if k in body]
    if extra:
        return error(400, f"Malformed input request: #: extraneous key [{extra[0]}] is not permitted, please "
                          "reformat your input and try again.")
    if not isinstance(body.get("anthropic_version"), str):
        return error(400, "Malformed input request: #: required key [anthropic_version] not found, please reformat "
                          "your input and try again.")
    return None


def headers(rec: fv.Request, base: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Its request id, InvokeModel's content type of the model's answer; a status fault's error type, as
    `x-amzn-errortype` (a fault's own headers win)."""
    given = {k for k, _ in base}
    own = [("x-amzn-requestid", f"fake-aws-{rec.index}")]
    if rec.path.endswith(("/invoke", "/invoke-with-response-stream")):  # (the model's own content type)
        own.append(("x-amzn-bedrock-content-type", "application/json"))
    status = rec.fault.status_code
    if status is not None and status >= 400 and "x-amzn-errortype" not in given:
        own.append(("x-amzn-errortype", ERROR_TYPES.get(status, "InternalServerException") + CORAL))
    return base + own


def events(rec: fv.Request, evs: list[fv.Ev]) -> list[fv.Ev]:
    """The fake's Anthropic events as Bedrock streams them: each in a chunk frame (InvokeModel), or said in
    Converse's events (ConverseStream)."""
    if converse(rec):
        return ConverseEvents().of(evs)
    out = []
    for ev in evs:
        if ev.payload is None:
            continue
        payload = dict(ev.payload)
        if payload.get("type") == "message_stop":
            payload["amazon-bedrock-invocationMetrics"] = METRICS
        out.append(fv.Ev(_chunk(payload), ev.delta, payload))
    return out


def _chunk(event: dict) -> bytes:
    payload = {"bytes": base64.b64encode(json.dumps(event).encode()).decode(), "p": "abcdefghij"}
    return aws_frame([(":event-type", "chunk"), (":content-type", "application/json"), (":message-type", "event")],
                     json.dumps(payload).encode())


def _event(kind: str, payload: dict) -> bytes:
    return aws_frame([(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")],
                     json.dumps({**payload, "p": "abcdefghij"}).encode())


class ConverseEvents:
    """An Anthropic stream said in ConverseStream's events (the fake's own reading, independent of Rotator's)."""

    STOP = {"end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens",
            "stop_sequence": "stop_sequence"}

    def __init__(self) -> None:
        self.usage = {"inputTokens": 0, "outputTokens": 0}

    def of(self, evs: list[fv.Ev]) -> list[fv.Ev]:
        out = []
        for ev in evs:
            for kind, payload in self._said(ev.payload or {}):
                out.append(fv.Ev(_event(kind, payload), ev.delta and kind == "contentBlockDelta", payload))
        return out

    def _said(self, p: dict) -> list[tuple[str, dict]]:
        kind, index = p.get("type"), p.get("index", 0)
        if kind == "message_start":
            usage = (p.get("message") or {}).get("usage") or {}
            self.usage["inputTokens"] = usage.get("input_tokens", 0)
            return [("messageStart", {"role": "assistant"})]
        if kind == "content_block_start" and (p.get("content_block") or {}).get("type") == "tool_use":
            block = p["content_block"]
            start = {"toolUse": {"toolUseId": block["id"], "name": block["name"]}}
            return [("contentBlockStart", {"start": start, "contentBlockIndex": index})]
        if kind == "content_block_delta":
            delta = p.get("delta") or {}
            said = {"text_delta": lambda: {"text": delta["text"]},
                    "input_json_delta": lambda: {"toolUse": {"input": delta["partial_json"]}},
                    "thinking_delta": lambda: {"reasoningContent": {"text": delta["thinking"]}},
                    "signature_delta": lambda: {"reasoningContent": {"signature": delta["signature"]}}}
            made = said.get(delta.get("type"))
            if made is None or delta.get("partial_json") == "":
                return []
            return [("contentBlockDelta", {"delta": made(), "contentBlockIndex": index})]
        if kind == "content_block_stop":
            return [("contentBlockStop", {"contentBlockIndex": index})]
        if kind == "message_delta":
            self.usage["outputTokens"] = (p.get("usage") or {}).get("output_tokens", 0)
            reason = (p.get("delta") or {}).get("stop_reason") or "end_turn"
            return [("messageStop", {"stopReason": self.STOP.get(reason, reason)})]
        if kind == "message_stop":
            usage = {**self.usage, "totalTokens": self.usage["inputTokens"] + self.usage["outputTokens"]}
            return [("metadata", {"usage": usage, "metrics": {"latencyMs": 120}})]
        return []


def whole(rec: fv.Request, body: dict) -> dict:
    """Anthropic's message as it is (InvokeModel), or said as a Converse answer."""
    if not converse(rec):
        return body
    content = []
    for block in body.get("content") or []:
        if block.get("type") == "text":
            content.append({"text": block["text"]})
        elif block.get("type") == "tool_use":
            content.append({"toolUse": {"toolUseId": block["id"], "name": block["name"], "input": block["input"]}})
    usage = body.get("usage") or {}
    tokens = {"inputTokens": usage.get("input_tokens", 0), "outputTokens": usage.get("output_tokens", 0)}
    return {"output": {"message": {"role": "assistant", "content": content}},
            "stopReason": body.get("stop_reason") or "end_turn",
            "usage": {**tokens, "totalTokens": sum(tokens.values())}, "metrics": {"latencyMs": 120}}


def error_event(rec: fv.Request) -> bytes:
    """The exception frame a stream fails with (`Fault.error_after`): the fault's `aws_exception`."""
    name = getattr(rec.fault, "aws_exception", None) or "modelStreamErrorException"
    message = THROTTLED if name == "throttlingException" else "The system encountered an unexpected error."
    return bedrock_exception(name, message)


def profiles(region: str | None) -> tuple[int, dict]:
    """ListInferenceProfiles (type SYSTEM_DEFINED): the geography's profile of each Anthropic model here."""
    geo = (region or "us-east-1").split("-")[0]
    summaries = [{"inferenceProfileId": f"{geo}.{m}", "inferenceProfileName": f"{geo.upper()} {m}",
                  "inferenceProfileArn": f"arn:aws:bedrock:{region}:123456789012:inference-profile/{geo}.{m}",
                  "models": [{"modelArn": f"arn:aws:bedrock:{region}::foundation-model/{m}"}],
                  "status": "ACTIVE", "type": "SYSTEM_DEFINED"} for m in PROFILE_MODELS]
    return 200, {"inferenceProfileSummaries": summaries}


def throttled() -> dict:
    return {"message": THROTTLED}


__all__ = ["BEDROCK", "EVENT_STREAM", "PROFILES", "check", "events", "headers", "route", "streams"]

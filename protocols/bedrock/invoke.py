"""Bedrock's InvokeModel calls with Anthropic bodies: Anthropic Messages in an envelope of Bedrock's
(protocols/envelope.py), opened for the engine and put back as it came.

- `POST .../model/{modelId}/invoke` and `/invoke-with-response-stream`: the model (id, inference profile or ARN,
  URL-encoded or not) is in the path, streaming is the operation's. The body is Anthropic's without `model` and
  `stream`, with `anthropic_version` (`bedrock-2023-05-31` from Claude Code; the anthropic SDK sends its own API
  version: it is kept as sent, never matched); a body without one is another vendor's model's, not opened.
- The call is opened into the plain Anthropic call it stands for (`/v1/messages`, the model and `stream` in the body)
  and put back for Bedrock with the client's own path when it asks the same model and operation (byte for byte: a
  SigV4 signature covers it), else a path written as the anthropic SDK writes it.
- A stream is an event stream of `chunk` frames, each one Anthropic event (invoke_stream.py).
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from protocols.bedrock.invoke_stream import InvokeAnswers, InvokeRepairer, enveloped_answer
from protocols.envelope import Envelope
from protocols.eventstream.events import CONTENT_TYPE_HEADER
from protocols.sse import dumps, load_object

PATH = re.compile(r"/model/([^/]+)/(invoke|invoke-with-response-stream)$")
PLAIN_PATH = "/v1/messages"  # the Anthropic call an InvokeModel call stands for
INVOKE = "/invoke"
INVOKE_STREAM = "/invoke-with-response-stream"
BEDROCK_VERSION = "bedrock-2023-05-31"  # what Claude Code sends, and Bedrock's documented value
ANTHROPIC_VERSION = "anthropic_version"
ANTHROPIC_BETA = "anthropic_beta"
BETA_HEADER = "anthropic-beta"
NOT_IN_BODY = ("model", "stream")  # the path and the operation say them
BEDROCK_ONLY = (ANTHROPIC_VERSION, ANTHROPIC_BETA)  # what Anthropic's own API refuses in a body
MODEL_SAFE = ":"  # how the anthropic SDK writes a model in the path (`/` escaped)


def invoke_model(path: str) -> str | None:
    """The model an InvokeModel call's path names (decoded), or None for another path."""
    match = PATH.search(path)
    return unquote(match.group(1), errors="replace") if match else None


def invoke_streams(path: str) -> bool:
    """Whether an InvokeModel call's path is the streaming one."""
    return path.endswith(INVOKE_STREAM)


def messages_body(body: dict, model: str, stream: bool) -> dict:
    """The Anthropic Messages body an InvokeModel body stands for (the model and streaming from the call)."""
    return {**body, "model": model, **({"stream": True} if stream else {})}


def invoke_body(messages: dict) -> dict:
    """An Anthropic Messages body as InvokeModel takes it: no `model` nor `stream`; `anthropic_version` as the body
    had it, else Bedrock's."""
    body = {k: v for k, v in messages.items() if k not in NOT_IN_BODY}
    body.setdefault(ANTHROPIC_VERSION, BEDROCK_VERSION)
    return body


def anthropic_body(body: dict) -> dict:
    """An opened InvokeModel body as Anthropic's own API takes it (another target of a route): without the members
    only Bedrock reads (its API version, the betas its clients put in the body)."""
    if not any(k in body for k in BEDROCK_ONLY):
        return body
    return {k: v for k, v in body.items() if k not in BEDROCK_ONLY}


def beta_headers(headers: list[tuple[str, str]], body: dict) -> list[tuple[str, str]]:
    """`headers` with the betas an InvokeModel body names (`anthropic_beta`, which Claude Code and boto3 clients send
    there, not in a header) in `anthropic-beta`, after the header's own, each once: how Anthropic's own API takes
    them."""
    betas = body.get(ANTHROPIC_BETA)
    if not isinstance(betas, list) or not betas:
        return headers
    named = [v for n, v in headers if n.lower() == BETA_HEADER]
    have = [b.strip() for v in named for b in v.split(",") if b.strip()]
    joined = [*have, *(b for b in betas if isinstance(b, str) and b and b not in have)]
    if joined == have:
        return headers
    return [*((n, v) for n, v in headers if n.lower() != BETA_HEADER), (BETA_HEADER, ",".join(dict.fromkeys(joined)))]


# -- the envelope (protocols/envelope.py) -------------------------------------------------------------------------


def sample_path(path: str) -> str:
    """The plain Anthropic path of an InvokeModel path (what tells its protocol); another path as it is."""
    return PLAIN_PATH if PATH.search(path) else path


def opened(path: str, body: dict) -> tuple[str, dict] | None:
    """(the plain Anthropic path, the Anthropic request) of an InvokeModel call with an Anthropic body; None for
    another (a body without `anthropic_version`: another vendor's model)."""
    model = invoke_model(path)
    if model is None or not isinstance(body.get(ANTHROPIC_VERSION), str):
        return None
    return PLAIN_PATH, messages_body(body, model, invoke_streams(path))


def envelope_path(client_path: str, plain_path: str, plain: dict) -> str:
    """The InvokeModel path of a plain call: the client's own, as it came, when it asks the same model and
    operation; else the model written as the anthropic SDK writes it, under the client's prefix."""
    model, stream = plain.get("model"), plain.get("stream") is True
    if not isinstance(model, str) or (invoke_model(client_path) == model and invoke_streams(client_path) == stream):
        return client_path
    match = PATH.search(client_path)
    prefix = client_path[:match.start()] if match else ""
    return f"{prefix}/model/{quote(model, safe=MODEL_SAFE)}{INVOKE_STREAM if stream else INVOKE}"


def enveloped(envelope: dict | None, plain_path: str, content: bytes) -> bytes:
    """A plain Anthropic request's JSON (`content`) as the InvokeModel body: without `model` and `stream` (the path
    says them), its API version the client's (`envelope`, its body as it came), else Bedrock's."""
    body = invoke_body(load_object(content) or {})
    if envelope is not None and isinstance(envelope.get(ANTHROPIC_VERSION), str):
        body[ANTHROPIC_VERSION] = envelope[ANTHROPIC_VERSION]
    return dumps(body)


def opened_answer(data: bytes) -> bytes:
    """A whole InvokeModel answer is Anthropic's message as it is."""
    return data


ENVELOPE = Envelope(sample_path, opened, envelope_path, enveloped, InvokeAnswers, enveloped_answer, opened_answer,
                    stream_type=CONTENT_TYPE_HEADER, repairer=InvokeRepairer)

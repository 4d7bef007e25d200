"""A wire whose client wraps its protocol's calls in an envelope of its own (Gemini CLI on Code Assist, the cloud
platforms: a Vertex path naming the model and its project, a Claude body without `model`, an Azure deployment path,
Bedrock's InvokeModel: Anthropic Messages in Bedrock's path and body, its answers in AWS event stream frames): what
the engine needs to read and repair the call inside and to put it back as it came. Pure functions, one set a wire.

- `sample_path(path)`: the plain path of the protocol a generation path stands for (what tells its protocol); a
  path it leaves as it is is not a call in the envelope (Bedrock's Converse calls: their own protocol's);
- `opened(path, body)`: (the plain path, the plain request) of a client's envelope, None when it is none. The plain
  path is the vendor's own, relative to its API's base URL (`/v1/messages`, `/v1beta/models/M:generateContent`,
  `/chat/completions`): another target of a route is sent it as a call of its own;
- `envelope_path(client_path, plain_path, body)` and `enveloped(envelope, plain_path, content)`: the path and body
  for a plain call (`body` the plain request, `content` its JSON) put in the client's envelope (its path and body as
  they came, byte for byte when it asks the same: a SigV4 signature covers them; the envelope's other members, its
  project and version kept), or in a new one (`client_path` "" and `envelope` None: the call made for a target that
  speaks this wire, not by its client);
- `answers()`: one request's answer events (`EnvelopedAnswers`): its `parser()` opens them (their data and bytes
  the plain answer's), its `stream(data)` puts what the client is sent back in the envelope each came in, a plain
  event Rotator wrote (or another target's) in a new one; None when the answers are the plain protocol's;
- `enveloped_answer(data)`: a whole answer for the client, a plain one put in an envelope (envelopes and errors as
  they are); `opened_answer(data)`: a whole answer's plain one;
- `stream_type`: the content type of the client's streams when it is not the plain protocol's (an AWS event stream
  around Anthropic's events): a plain stream is put back in it, its content type too;
- `repairer(inner)`: the plain protocol's repairer around the envelope's own stream events (an exception frame),
  for an answer of the envelope's vendor; None when it has none.

A wire whose answers are in its envelope (`answers`: a login's, Bedrock's InvokeModel) serves its own clients only;
one whose answers are the plain protocol's (Vertex, Azure) is also sent other providers' clients' calls, in a new
envelope.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from protocols.base import Repairer
from protocols.events import StreamParser


class EnvelopedAnswers(Protocol):
    def parser(self) -> StreamParser: ...

    def stream(self, data: bytes) -> bytes: ...


def as_they_are(data: bytes) -> bytes:
    return data


@dataclass(frozen=True)
class Envelope:
    sample_path: Callable[[str], str]
    opened: Callable[[str, dict], tuple[str, dict] | None]
    envelope_path: Callable[[str, str, dict], str]
    enveloped: Callable[[dict | None, str, bytes], bytes]
    answers: Callable[[], EnvelopedAnswers] | None = None  # None: the answers are the plain protocol's
    enveloped_answer: Callable[[bytes], bytes] = as_they_are
    opened_answer: Callable[[bytes], bytes] = as_they_are
    stream_type: str | None = None
    repairer: Callable[[Repairer], Repairer] | None = None

    def wraps(self, path: str) -> bool:
        """Whether a generation path is a call in this envelope (its path stands for another protocol's)."""
        return self.sample_path(path) != path

    @property
    def for_others(self) -> bool:
        """Whether another provider's client's call may be put in it (its answers are the plain protocol's)."""
        return self.answers is None

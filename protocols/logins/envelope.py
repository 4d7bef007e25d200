"""A login whose client wraps its protocol's calls in an envelope of its own (Gemini CLI on Code Assist): what the
engine needs to read and repair the call inside and to put it back as it came. Pure functions, one set a login.

- `sample_path(path)`: the plain path of the protocol a generation path stands for (what tells its protocol);
- `opened(path, body)`: (the plain path, the plain request) of a client's envelope, None when it is none;
- `envelope_path(plain_path, plain, client_path)` and `enveloped(envelope, model, content)`: the client's path
  (`client_path` when it asks the same: byte for byte as it came) and body for a plain call (`plain` the plain
  request, `content` its JSON), the envelope's other members as they came;
- `answers()`: one request's answer events (`EnvelopedAnswers`): its `parser()` opens them (their data and bytes
  the plain answer's), its `stream(data)` puts what the client is sent back in the envelope each came in, a plain
  event Rotator wrote (or another target's) in a new one;
- `enveloped_answer(data)`: a whole answer for the client, a plain one put in an envelope (envelopes and errors as
  they are); `opened_answer(data)`: a whole answer's plain one;
- `stream_type`: the content type of the client's streams when it is not the plain protocol's (an AWS event stream
  around Anthropic's events): a plain stream is put back in it, its content type too;
- `repairer(inner)`: the plain protocol's repairer around the envelope's own stream events (an exception frame),
  for an answer of the envelope's vendor; None when it has none.

Used by a login (protocols/logins/) and by a provider whose calls are another protocol in an envelope of the
vendor's (Bedrock's InvokeModel: protocols/bedrock/invoke.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from protocols.base import Repairer, StreamParser


class EnvelopedAnswers(Protocol):
    def parser(self) -> StreamParser: ...

    def stream(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class Envelope:
    sample_path: Callable[[str], str]
    opened: Callable[[str, dict], tuple[str, dict] | None]
    envelope_path: Callable[[str, dict, str], str]
    enveloped: Callable[[dict, str, bytes], bytes]
    answers: Callable[[], EnvelopedAnswers]
    enveloped_answer: Callable[[bytes], bytes]
    opened_answer: Callable[[bytes], bytes]
    stream_type: str | None = None
    repairer: Callable[[Repairer], Repairer] | None = None

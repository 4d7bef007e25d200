"""A login whose client wraps its protocol's calls in an envelope of its own (Gemini CLI on Code Assist): what the
engine needs to read and repair the call inside and to put it back as it came. Pure functions, one set a login.

- `sample_path(path)`: the plain path of the protocol a generation path stands for (what tells its protocol);
- `opened(path, body)`: (the plain path, the plain request) of a client's envelope, None when it is none;
- `envelope_path(plain_path)` and `enveloped(envelope, model, content)`: the client's path and body for a plain
  call (`content` its JSON) to the login, the envelope's other members as they came;
- `answers()`: one request's answer events (`EnvelopedAnswers`): its `parser()` opens them (their data and bytes
  the plain answer's), its `stream(data)` puts what the client is sent back in the envelope each came in, a plain
  event Rotator wrote (or another target's) in a new one;
- `enveloped_answer(data)`: a whole answer for the client, a plain one put in an envelope (envelopes and errors as
  they are); `opened_answer(data)`: a whole answer's plain one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from protocols.sse import SSEParser


class EnvelopedAnswers(Protocol):
    def parser(self) -> SSEParser: ...

    def stream(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class Envelope:
    sample_path: Callable[[str], str]
    opened: Callable[[str, dict], tuple[str, dict] | None]
    envelope_path: Callable[[str], str]
    enveloped: Callable[[dict, str, bytes], bytes]
    answers: Callable[[], EnvelopedAnswers]
    enveloped_answer: Callable[[bytes], bytes]
    opened_answer: Callable[[bytes], bytes]

"""How a continuation is asked for, the same in every protocol: the words of an instruction continuation, the
partial answer as a prefill may carry it, and the output cap it asks for (what the client's leaves)."""

from __future__ import annotations

from dataclasses import dataclass

from protocols.capabilities import Capabilities

INSTRUCTION = ("Your previous response was interrupted. Continue it exactly where it stopped, without repeating"
               " anything already written.")
# The result of a tool call the partial answer completed (a call in a request needs one): it was not run yet.
NOT_RUN = "Not run yet: the response that made this call was interrupted before the call could be run."


def prefill_text(text: str, caps: Capabilities) -> str:
    """The partial answer as the trailing assistant turn carries it: without trailing whitespace where the target
    refuses it (the seam drops the continuation's repeat of it)."""
    return text.rstrip() if caps.prefill_strip else text


# Why an answer the request constrained to JSON (a schema, or JSON mode) is not continued once its JSON has begun:
# the vendors generate it by constrained decoding from the document's start, so a continuation (however asked) is held
# to a whole new document, and without the constraint nothing would hold the joined text to it (docs/reliability.md).
STRUCTURED = "structured output: a JSON answer cut after it began cannot be continued"


def json_begun(structured: bool, text: str) -> bool:
    """Whether a partial answer `text` of a request that asked for JSON (`structured`) has begun its JSON."""
    return structured and bool(text.strip())


# A continuation asks for no more output than the client's cap leaves (docs/reliability.md): the joined answer stops
# where the uncut one would have. When nothing is left to ask for, the answer is not continued: it ends with the
# protocol's own token-cap stop, which is then simply true.
CAP_REACHED = "the output cap was reached"
CHARS_PER_TOKEN = 4  # about, in what an answer streams (as request sizes are estimated)


def spent(reported: int, deltas: int, text: str) -> int:
    """The output tokens a cut answer already spent: what its stream reported where it counted them so far (exact),
    else an estimate: a token a content delta, or one every CHARS_PER_TOKEN characters of `text` (all it streamed:
    text, reasoning, tool arguments, as far as known), whichever is more."""
    return reported or max(deltas, len(text) // CHARS_PER_TOKEN)


@dataclass(frozen=True, slots=True)
class OutputCap:
    """Where a protocol's request caps the answer's output (`paths`: each a path of keys, all that are present are
    the cap, the least of them counts), and the least its API takes (`least`)."""

    paths: tuple[tuple[str, ...], ...]
    least: int = 1

    def of(self, body: dict) -> int | None:
        """The request's cap; None when it sets none."""
        caps = [cap for path in self.paths if (cap := _count(_at(body, path))) is not None]
        return min(caps) if caps else None

    def asking(self, body: dict, left: int) -> dict:
        """`body` asking for at most `left` tokens (a copy: the client's body is not changed)."""
        for path in self.paths:
            if _count(_at(body, path)) is not None:
                body = _with(body, path, left)
        return body


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _at(body: object, path: tuple[str, ...]) -> object:
    for key in path:
        body = body.get(key) if isinstance(body, dict) else None
    return body


def _with(body: dict, path: tuple[str, ...], value: int) -> dict:
    head, *rest = path
    return {**body, head: _with(body[head], tuple(rest), value) if rest else value}

"""How a continuation is asked for, the same in every protocol: the words of an instruction continuation, and the
partial answer as a prefill may carry it."""

from __future__ import annotations

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

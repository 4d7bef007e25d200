"""How a continuation is asked for, the same in every protocol: the words of an instruction continuation, and the
partial answer as a prefill may carry it."""

from __future__ import annotations

from protocols.capabilities import Capabilities

INSTRUCTION = "Your previous response was cut off. Continue exactly where it stopped, without repeating anything."


def prefill_text(text: str, caps: Capabilities) -> str:
    """The partial answer as the trailing assistant turn carries it: without trailing whitespace where the target
    refuses it (the seam drops the continuation's repeat of it)."""
    return text.rstrip() if caps.prefill_strip else text

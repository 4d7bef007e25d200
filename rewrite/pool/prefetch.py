"""The model a request's body names, guessed from its ends before the body is read (for the first attempt's shared pick
started early: rewrite/pool/decisions.py's `Prefetch`)."""

from __future__ import annotations

import re

# The model member of a JSON body: SDKs put it at the start or the end, after the messages. A guess only: the
# attempt uses the pick only if its model is the one guessed.
_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')
_LOOK = 4096  # bytes looked at, at each end of the body


def model_in_body(raw: bytes | None) -> str | None:
    if not raw:
        return None
    found = _MODEL.search(raw, 0, _LOOK) or (_MODEL.search(raw, len(raw) - _LOOK) if len(raw) > _LOOK else None)
    return found[1].decode(errors="replace") if found else None

"""What a Gemini error answer means (protocols/vendor_errors.py): Google's RPC error details
(protocols/families/google_rpc.py: a bad key, the delay, a daily quota) and Gemini's refusals of request parameters.

- A 403 "CachedContent not found (or permission denied)" names an explicit cache the key's project does not hold
  (another project made it, or it expired): the request's state, not a refused key.
- A 400 `INVALID_ARGUMENT` names refused fields: "Invalid JSON payload received. Unknown name \"topK\" at
  'generation_config': Cannot find field." (one such sentence per field), or "Thinking level is not supported for
  this model."
"""

from __future__ import annotations

import re

from protocols.families.google_rpc import RPC_ERRORS, bad_key
from protocols.refused_params import camel
from protocols.vendor_errors import ErrorReader, error_message, foreign_state, refused_by

CACHE_NOT_HELD = foreign_state(403, [b"CachedContent not found"])

UNKNOWN_NAME = re.compile(r"""Unknown name \\?"(\w+)\\?"(?: at '([^']*)')?""")
THINKING_LEVEL_REFUSED = re.compile(r"^Thinking level is not supported for this model", re.IGNORECASE)
CONFIG = "generationConfig"
THINKING_LEVEL = f"{CONFIG}.thinkingConfig.thinkingLevel"
ESSENTIAL = frozenset({"contents", "systemInstruction", "tools", "toolConfig", "cachedContent"})


def _refused(error: dict) -> list[str]:
    if error.get("status") != "INVALID_ARGUMENT":
        return []
    message = error_message(error)
    if THINKING_LEVEL_REFUSED.match(message):
        return [THINKING_LEVEL]
    return [".".join([*map(camel, where.split("."))] + [name]) if where else name
            for name, where in UNKNOWN_NAME.findall(message)]


GEMINI_ERRORS = ErrorReader((bad_key, CACHE_NOT_HELD, *RPC_ERRORS, refused_by(_refused)), essential=ESSENTIAL,
                            holders=(CONFIG,))

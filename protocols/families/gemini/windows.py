"""The quota windows a Gemini answer reports (protocols/windows.py). Gemini sends no rate-limit headers on a
success (python-genai#1721 asks for them): what it says of a key's quotas is in its quota errors, a 429
`RESOURCE_EXHAUSTED` whose `google.rpc.QuotaFailure` names each quota spent (protocols/families/google_rpc.py).

Quota groups: Gemini's quotas are per model (the quota's `model` dimension): no two models share one.
"""

from __future__ import annotations

from protocols.families.google_rpc import quota_failures
from protocols.windows import WindowReader

GEMINI_WINDOWS = WindowReader((quota_failures,), heads=())

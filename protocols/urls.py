"""Client values in upstream URLs: a model name is one escaped path segment, and a path never climbs.

A model name goes into a Gemini URL (`/v1beta/models/{model}:generateContent`); anything that would end the
segment or the path there (`/`, `?`, `#`, a dot segment, a control character) could send the pooled key to
another endpoint, so such a value is refused rather than sent. A client's path on an intercepted host is put
under the provider's `base_url`: a dot segment in it (`/v1/../../admin`, or `%2e%2e`) would climb out of the
base URL's path, so it is refused too.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

# RFC 3986's characters of a path segment that need no escaping, less ':' (Gemini's `model:method` separator).
SEGMENT_SAFE = "-._~!$&'()*+,;=@"
DOT_SEGMENTS = frozenset({".", ".."})
# Characters that end a segment or the path itself wherever a server reads them.
SEGMENT_ENDS = "/\\?#"
PATH_ENDS = "#"


class UnsafeURLValue(ValueError):
    """A client's value that cannot go into an upstream URL; the message is one line for the client."""


def _control(text: str) -> bool:
    return _CONTROL.search(text) is not None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def segment_problem(value: str) -> str | None:
    """Why `value` cannot be one path segment, or None."""
    if not value:
        return "is empty"
    if value in DOT_SEGMENTS:
        return "is a dot segment"
    for c in SEGMENT_ENDS:
        if c in value:
            return f"contains {c!r}"
    if _control(value):
        return "contains a control character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode"
    return None


def segment(value: str, what: str = "model name") -> str:
    """`value` as one escaped path segment. UnsafeURLValue when it cannot be one."""
    problem = segment_problem(value)
    if problem is not None:
        raise UnsafeURLValue(f"the {what} {shown(value)} {problem}: it cannot be sent in a URL")
    return quote(value, safe=SEGMENT_SAFE)


def path_problem(path: str) -> str | None:
    """Why a client's request path (without its query) cannot be put under a base URL, or None. Its segments are
    read as a server may: percent-decoded once, with '\\' as '/'."""
    if any(c in path for c in PATH_ENDS) or _control(path):
        return "contains '#' or a control character"
    decoded = unquote(path, errors="replace")
    if _control(decoded):
        return "contains an escaped control character"
    if not DOT_SEGMENTS.isdisjoint(decoded.replace("\\", "/").split("/")):
        return "contains a dot segment ('.' or '..')"
    return None


def shown(value: str) -> str:
    """A client's value in a one-line message: quoted, control characters escaped, at most 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

"""Cheap reading of the usual Chat stream chunk: the hot path of a stream translated from a Chat upstream.

Vendors write every chunk of a stream alike: the same head (id, object, created, model, ...), then the choices, of
which nearly all carry one text delta. Learnt from a chunk read whole, that shape lets later chunks be read from
their changing parts only, with the same outcome as reading them whole (a chunk that does not fit is read whole).
"""

from __future__ import annotations

import json.decoder
from collections.abc import Callable

from protocols.sse import load_object

# The JSON string scanner json itself uses (C-accelerated): (text, index after the opening quote) -> (value, end).
# typeshed does not declare it.
scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]

CHOICES_MEMBER = '"choices":'
CONTENT_MEMBER = '"content":"'
READ_AFTER_START = ("choices", "usage", "error")  # the members of a chunk the decoder reads after the first
PLAIN_KEYS = frozenset({"content", "role"})  # a delta with only these (others null) is plain text
PROBE = "\u2063rotator-probe"  # a text no vendor sends, to find where a chunk's text sits


def plain_text(chunk: dict) -> str | None:
    """The text of the usual chunk, one first choice whose delta holds only `content` (no finish, usage or error);
    None for any other chunk."""
    choices = chunk.get("choices")
    if type(choices) is not list or len(choices) != 1 or chunk.get("usage") or chunk.get("error"):
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("finish_reason") or choice.get("index", 0) != 0:
        return None
    delta = choice.get("delta")
    if type(delta) is not dict:
        return None
    text = delta.get("content")
    if type(text) is not str:
        return None
    if len(delta) > 1 and any(value is not None for key, value in delta.items() if key not in PLAIN_KEYS):
        return None  # reasoning, a refusal or a tool call beside the text
    return text


def constant_head(data: str, chunk: dict) -> str:
    """The text of a chunk before its top-level `"choices":` member, when that text is `{` and whole members
    other than choices, usage and error (id, object, created, model...).

    A later chunk that starts with the same text followed by `"choices":` can be read from `{` + the rest: that
    is valid JSON exactly when the whole chunk is, and holds every member the decoder reads after the first chunk.
    "" when this chunk does not show it (no such member, whitespace, a nested or repeated key).
    """
    cut = data.find(CHOICES_MEMBER)
    if cut < 2 or data[cut - 1] != ",":
        return ""
    members, rest = load_object(data[:cut - 1] + "}"), load_object("{" + data[cut:])
    if not members or rest is None or not members.keys().isdisjoint(READ_AFTER_START) or {**members, **rest} != chunk:
        return ""
    return data[:cut]


def text_template(data: str, text: str) -> tuple[str, str] | None:
    """(before, after): the text of a plain-text chunk before its delta's text and after it up to the end of the
    choices, such that any chunk `before + <JSON string> + after + <the top-level object's end>` is plain text.

    None when this chunk does not show it. The template is checked by putting another text in its place.
    """
    at = data.find(CONTENT_MEMBER)
    if at < 0:
        return None
    start = at + len(CONTENT_MEMBER)
    try:
        value, end = scanstring(data, start)
    except ValueError:
        return None
    close = data.find("]", end)
    if value != text or close < 0 or data[close + 1:close + 2] not in ("}", ","):
        return None
    probe = load_object(data[:start] + PROBE + data[end - 1:close + 1] + "}")
    if probe is None or plain_text(probe) != PROBE:
        return None
    return data[:start], data[end:close + 1]


def templated_text(data: str, template: tuple[str, str]) -> str | None:
    """The text of a chunk that fits `template` (see `text_template`), its other top-level members checked;
    None when it does not fit (then it is read whole)."""
    before, after = template
    if not data.startswith(before):
        return None
    try:
        text, end = scanstring(data, len(before))
    except ValueError:
        return None
    if not data.startswith(after, end):
        return None
    tail = data[end + len(after):]
    if tail == "}":
        return text
    if tail[:1] != ",":
        return None
    members = load_object("{" + tail[1:])  # what follows the choices, e.g. "usage":null or a vendor's own
    if not members or "choices" in members or members.get("usage") or members.get("error"):  # {}: a stray comma
        return None
    return text

"""Gemini's conversation evidence (protocols/evidence.py).

Pin: `cachedContent`, an explicit cache made by one project (its lifetime is the cache's own, set when it was
made). The root is `tools` and `systemInstruction`; then a link per content. Thought parts and thought signatures
are left out (Gemini CLI strips the one and rewrites the other before it sends its history again). Gemini caches a
prompt's prefix by itself: the cache prefix is the root. The Code Assist envelope (Gemini CLI's login:
`{model, project, request: {contents, …, session_id}}`) is read inside its `request`.

Its state calls: `POST …/cachedContents` makes a cache (the answer names it, `cachedContents/<id>`, with its
`expireTime`); `GET`, `PATCH` (a new `ttl` or `expireTime`) and `DELETE …/cachedContents/<id>` name one. A name
without its collection (`<id>`) is the same cache, as the SDKs write it.
"""

from __future__ import annotations

import re

from protocols.evidence import Reader, Scan, tail, tools_mark
from protocols.pins import PIN_CACHED_CONTENT, Kept, Pin, StateCall
from protocols.windows import epoch

_LEFT_OUT = frozenset({"thoughtSignature", "thought_signature", "thought", "partMetadata", "part_metadata"})
_CALLS = frozenset({"functionCall", "function_call", "functionResponse", "function_response"})
CACHES = "cachedContents"
_CACHE_PATH = re.compile(rf"/({CACHES}(?:/[^/:]+)?)$")
_NAMED = frozenset({"GET", "PATCH", "DELETE"})
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")  # a protobuf Duration: "3600s", "1.5s"


class GeminiConversation(Reader):
    def scan(self, body: dict, path: str, scan: Scan) -> None:
        inner = body.get("request")
        if isinstance(inner, dict) and "contents" not in body:
            body = inner
        cached = body.get("cachedContent", body.get("cached_content"))
        scan.pin(PIN_CACHED_CONTENT, cache_name(cached))
        if isinstance(cached, str) and cached:
            scan.cache(None, "cachedContent")
        tools_mark(scan, body.get("tools"))
        system = body.get("systemInstruction", body.get("system_instruction"))
        if isinstance(system, str):
            scan.text(system)
        elif isinstance(system, dict):
            _parts(scan, system.get("parts"))
        scan.close()
        contents = body.get("contents")
        if isinstance(contents, (str, dict)):
            contents = [contents]
        contents = contents if isinstance(contents, list) else []
        for content in contents[tail(scan, contents):]:
            if isinstance(content, str):
                scan.mark("user")
                scan.text(content)
            elif isinstance(content, dict):
                scan.mark(f"{content.get('role', 'user')}")
                _parts(scan, content.get("parts"))
            else:
                continue
            scan.close()
        scan.breakpoint = 0

    def state_call(self, method: str, path: str) -> StateCall | None:
        match = _CACHE_PATH.search(path)
        if match is None:
            return None
        name = match.group(1)
        if name == CACHES:  # (its GET lists the project's caches: no one cache's)
            return StateCall(None) if method == "POST" else None
        return StateCall(Pin(PIN_CACHED_CONTENT, name), method == "DELETE") if method in _NAMED else None

    def kept(self, call: StateCall, asked: object, answer: object, now: float) -> Kept | None:
        name = answer.get("name") if isinstance(answer, dict) and not call.deletes else None
        if not isinstance(name, str) or not name.startswith(f"{CACHES}/"):
            return None
        seconds = _lifetime(answer, now)
        return Kept(Pin(PIN_CACHED_CONTENT, name), seconds if seconds is not None else _lifetime(asked, now))


def cache_name(value: object) -> object:
    """A cache's full name (`cachedContents/<id>`) for a name written without its collection."""
    return f"{CACHES}/{value}" if isinstance(value, str) and value and "/" not in value else value


def _lifetime(resource: object, now: float) -> float | None:
    """Seconds a cache lives from `now`: its `expireTime`, else its `ttl` (None: it says neither)."""
    if not isinstance(resource, dict):
        return None
    expires = resource.get("expireTime", resource.get("expire_time"))
    if isinstance(expires, str) and (when := epoch(expires)) is not None:
        return when - now
    ttl = resource.get("ttl")
    match = _DURATION.match(ttl.strip()) if isinstance(ttl, str) else None
    return float(match.group(1)) if match else None


def _parts(scan: Scan, parts: object) -> None:
    if isinstance(parts, dict):
        parts = [parts]
    for part in parts if isinstance(parts, list) else ():
        if isinstance(part, str):
            scan.text(part)
            continue
        if not isinstance(part, dict) or part.get("thought") is True:
            continue
        text = part.get("text")
        if isinstance(text, str):
            scan.text(text)
            continue
        for key, value in part.items():
            if key in _LEFT_OUT:
                continue
            if key in _CALLS and isinstance(value, dict):  # its id, its name; without an id its arguments or result
                call_id = value.get("id")
                scan.mark(f"{key}|{call_id}|{value.get('name')}")
                if not (isinstance(call_id, str) and call_id):
                    scan.value(value.get("args", value.get("response")))
            elif isinstance(value, dict) and isinstance(value.get("data"), str):  # inlineData
                scan.mark(f"{key}|{value.get('mimeType', value.get('mime_type'))}")
                scan.opaque(value["data"])
            else:
                scan.mark(key)
                scan.value(value)


READER = GeminiConversation()

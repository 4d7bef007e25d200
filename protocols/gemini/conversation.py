"""Gemini's conversation evidence (protocols/conversation.py).

Pin: `cachedContent`, an explicit cache made by one project (its lifetime is the cache's own, set when it was
made). The root is `tools` and `systemInstruction`; then a link per content. Thought parts and thought signatures
are left out (Gemini CLI strips the one and rewrites the other before it sends its history again). Gemini caches a
prompt's prefix by itself: the cache prefix is the root. The Code Assist envelope (Gemini CLI's login:
`{model, project, request: {contents, …, session_id}}`) is read inside its `request`.
"""

from __future__ import annotations

from protocols.conversation import PIN_CACHED_CONTENT, Reader, Scan, tail, tools_mark

_LEFT_OUT = frozenset({"thoughtSignature", "thought_signature", "thought", "partMetadata", "part_metadata"})
_CALLS = frozenset({"functionCall", "function_call", "functionResponse", "function_response"})


class GeminiConversation(Reader):
    def scan(self, body: dict, path: str, scan: Scan) -> None:
        inner = body.get("request")
        if isinstance(inner, dict) and "contents" not in body:
            body = inner
        cached = body.get("cachedContent", body.get("cached_content"))
        scan.pin(PIN_CACHED_CONTENT, cached)
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
            if key in _CALLS and isinstance(value, dict):  # its id, its name, its arguments or result (bounded)
                scan.mark(f"{key}|{value.get('id')}|{value.get('name')}")
                scan.value(value.get("args", value.get("response")))
            elif isinstance(value, dict) and isinstance(value.get("data"), str):  # inlineData
                scan.mark(f"{key}|{value.get('mimeType', value.get('mime_type'))}")
                scan.opaque(value["data"])
            else:
                scan.mark(key)
                scan.value(value)


READER = GeminiConversation()

"""OpenAI Chat Completions' conversation evidence (protocols/conversation.py), and what both OpenAI protocols share.

The root is `tools` and the leading system and developer messages; then a link per message. OpenAI caches any
prompt's prefix by itself: the cache prefix is the root, or the message of the last explicit
`prompt_cache_breakpoint` part. Its lifetime: `prompt_cache_retention` ("in_memory": 5 to 10 minutes idle, "24h"),
`prompt_cache_options.ttl` and the breakpoints' `ttl` (gpt-5.6 and later), the longest asked. Chat has no pins.
"""

from __future__ import annotations

from protocols.conversation import Reader, Scan, duration, tail, tools_mark

# (Tuples, not sets: a member of the wrong type, a list, is compared, never hashed.)
INSTRUCTION_ROLES = ("system", "developer")
# Retention values and what they mean in seconds (in memory: "typically 5 to 10 minutes of inactivity").
RETENTION = {"in_memory": 600, "24h": 86400}
_TEXT_PARTS = ("text", "input_text", "output_text", "refusal", "summary_text")
_MEDIA_KEYS = ("url", "data", "file_data", "file_id")


def openai_cache(scan: Scan, body: dict) -> None:
    """The cache lifetime a body of either OpenAI protocol asks for (its parts' breakpoints are read with them)."""
    retention = body.get("prompt_cache_retention")
    if isinstance(retention, str):
        scan.cache(RETENTION.get(retention, duration(retention)), f"prompt_cache_retention {retention}")
    options = body.get("prompt_cache_options")
    if isinstance(options, dict) and isinstance(options.get("ttl"), str):
        scan.cache(duration(options["ttl"]), f"prompt_cache_options ttl {options['ttl']}")
    if scan.breakpoint is None:
        scan.breakpoint = 0


def content_parts(scan: Scan, content: object) -> None:
    """A message's content as both OpenAI protocols write it: a string, or parts (text, images, files, audio)."""
    if isinstance(content, str):
        scan.text(content)
        return
    if not isinstance(content, list):
        return
    for part in content:
        if isinstance(part, str):
            scan.text(part)
            continue
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in _TEXT_PARTS:
            text = part.get("text") if kind != "refusal" else part.get("refusal")
            if isinstance(text, str):
                scan.text(text)
        else:
            scan.mark(f"{kind}")
            for key, value in part.items():  # an image's url, a file's id or data, audio data: as opaque marks
                if isinstance(value, dict):
                    value = next((value[k] for k in _MEDIA_KEYS if isinstance(value.get(k), str)), None)
                if isinstance(value, str) and key != "type":
                    scan.opaque(value)
        breakpoint_ = part.get("prompt_cache_breakpoint")
        if isinstance(breakpoint_, dict):
            scan.breakpoint = scan.here()
            ttl = breakpoint_.get("ttl")
            scan.cache(duration(ttl), f"prompt_cache_breakpoint ttl {ttl}")


class ChatConversation(Reader):
    def scan(self, body: dict, path: str, scan: Scan) -> None:
        tools_mark(scan, body.get("tools"))
        tools_mark(scan, body.get("functions"))
        messages = body.get("messages")
        messages = messages if isinstance(messages, list) else []
        start = 0
        while start < len(messages) and _instruction(messages[start]):
            _message(scan, messages[start])
            start += 1
        scan.close()
        for message in messages[tail(scan, messages, start):]:
            if isinstance(message, dict):
                _message(scan, message)
                scan.close()
        openai_cache(scan, body)


def _instruction(message: object) -> bool:
    return isinstance(message, dict) and message.get("role") in INSTRUCTION_ROLES


def _message(scan: Scan, message: dict) -> None:
    called = message.get("tool_call_id")
    scan.mark(f"{message.get('role')}|{called}|{message.get('name')}")
    if not (isinstance(called, str) and called):  # (a result is named by its call's id, not read)
        content_parts(scan, message.get("content"))
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        if not isinstance(call, dict):
            continue
        call_id = call.get("id")
        scan.mark(f"{call_id}|{call.get('type')}")
        for key in ("function", "custom"):
            inner = call.get(key)
            if isinstance(inner, dict):
                scan.mark(f"{inner.get('name')}")
                if not (isinstance(call_id, str) and call_id):  # (a call is named by its id, when it has one)
                    scan.value(inner.get("arguments", inner.get("input")))
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        scan.mark(f"{legacy.get('name')}")
        scan.value(legacy.get("arguments"))


READER = ChatConversation()

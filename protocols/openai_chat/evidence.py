"""OpenAI Chat Completions' conversation evidence (protocols/evidence.py).

The root is `tools` and the leading system and developer messages; then a link per message. The cache prefix and
lifetime as OpenAI's (protocols/families/openai/evidence.py). Chat has no pins.
"""

from __future__ import annotations

from protocols.evidence import Reader, Scan, tail, tools_mark
from protocols.families.openai.evidence import INSTRUCTION_ROLES, content_parts, openai_cache


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

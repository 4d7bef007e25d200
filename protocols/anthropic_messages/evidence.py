"""Anthropic Messages' conversation evidence (protocols/evidence.py).

The root is `tools` and `system`, without Claude Code's billing header (`x-anthropic-billing-header: …; cch=…`, its
first system block, which changes with every request); then a link per message. Nothing is cached without a
`cache_control` marker: the cache prefix ends at the last one (a top-level `cache_control`, automatic caching, at
the whole prompt), and the longest `ttl` asked ("5m" when none is said) is the cache's lifetime. Of the tools, only
the last one's marker is read (where a breakpoint on the tools goes). Anthropic has no pins: a thinking block's
signature is accepted from any account.
"""

from __future__ import annotations

from protocols.evidence import HEAD, SHORT, TAIL, Reader, Scan, content_mark, duration, tail, tools_mark

BILLING_HEADER = "x-anthropic-billing-header"
DEFAULT_TTL = "5m"
_SKIPPED = ("thinking", "redacted_thinking")  # signed, and dropped from history by some clients


class MessagesConversation(Reader):
    def scan(self, body: dict, path: str, scan: Scan) -> None:
        tools = body.get("tools")
        tools_mark(scan, tools)
        last = tools[-1] if isinstance(tools, list) and tools else None  # (where a tools breakpoint goes)
        if isinstance(last, dict) and "cache_control" in last:
            _breakpoint(scan, 0, last["cache_control"])
        system = body.get("system")
        if isinstance(system, str):
            if not system.startswith(BILLING_HEADER):
                scan.text(system)
        elif isinstance(system, list):
            for block in system:
                text = block.get("text") if isinstance(block, dict) else None
                if isinstance(text, str) and not text.startswith(BILLING_HEADER):
                    scan.text(text)
                if isinstance(block, dict) and "cache_control" in block:
                    _breakpoint(scan, 0, block["cache_control"])
        scan.close()
        messages = body.get("messages")
        if isinstance(messages, list):
            add, close = scan.parts.append, scan.close
            for message in messages[tail(scan, messages):]:
                if not isinstance(message, dict):
                    continue
                add(message.get("role"))
                content = message.get("content")
                if isinstance(content, str):  # (as a single text block)
                    n = len(content)
                    scan.chars += n
                    add(content if n <= SHORT else f"{n}:{content[:HEAD]}{content[-TAIL:]}")
                elif isinstance(content, list):
                    _blocks(scan, content)
                close()
        if isinstance(body.get("cache_control"), dict):
            _breakpoint(scan, -1, body["cache_control"])


def _blocks(scan: Scan, blocks: list) -> None:
    """A message's (or a result's) content blocks, marked into the current link."""
    add = scan.parts.append
    chars = 0
    for block in blocks:
        if not isinstance(block, dict):
            if isinstance(block, str):
                scan.text(block)
            continue
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if isinstance(text, str):
                n = len(text)
                chars += n
                add(text if n <= SHORT else f"{n}:{text[:HEAD]}{text[-TAIL:]}")
        elif kind == "tool_use":
            add("u")
            add(block.get("id"))
            add(block.get("name"))
        elif kind == "tool_result":
            add("r")
            called = block.get("tool_use_id")
            add(called)
            content = block.get("content")
            if isinstance(called, str) and called:
                pass  # (its call's id names it: the result is not read)
            elif isinstance(content, str):
                scan.text(content)
            elif isinstance(content, list):
                _blocks(scan, content)
        elif kind in _SKIPPED:
            continue
        elif kind == "image" or kind == "document":
            source = block.get("source")
            if isinstance(source, dict):
                add(f"{kind}|{source.get('type')}|{source.get('media_type')}|{source.get('url')}|"
                    f"{source.get('file_id')}")
                data = source.get("data")
                if isinstance(data, str):
                    add(content_mark(data))
                elif isinstance(source.get("content"), list):  # a document of blocks
                    _blocks(scan, source["content"])
        else:  # server tools and their results, search results, …
            add(f"{kind}|{block.get('id')}|{block.get('name')}|{block.get('tool_use_id')}")
            content = block.get("content")
            if isinstance(content, str):
                scan.text(content)
            elif isinstance(content, list):
                _blocks(scan, content)
        if "cache_control" in block:
            _breakpoint(scan, scan.here(), block["cache_control"])
    scan.chars += chars


def _breakpoint(scan: Scan, link: int, marker: object) -> None:
    if not isinstance(marker, dict):
        return
    if scan.breakpoint != -1:
        scan.breakpoint = link
    ttl = marker.get("ttl", DEFAULT_TTL)
    scan.cache(duration(ttl), f"cache_control ttl {ttl}")


READER = MessagesConversation()

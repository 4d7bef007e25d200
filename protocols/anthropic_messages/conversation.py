"""Anthropic Messages' conversation evidence (protocols/conversation.py).

The root is `tools` and `system`, without Claude Code's billing header (`x-anthropic-billing-header: …; cch=…`, its
first system block, which changes with every request); then a link per message. Nothing is cached without a
`cache_control` marker: the cache prefix ends at the last one (a top-level `cache_control`, automatic caching, at
the whole prompt), and the longest `ttl` asked ("5m" when none is said) is the cache's lifetime. Anthropic has no
pins: a thinking block's signature is accepted from any account.
"""

from __future__ import annotations

from protocols.conversation import Reader, Scan, duration, tools_mark

BILLING_HEADER = "x-anthropic-billing-header"
DEFAULT_TTL = "5m"
_SKIPPED = ("thinking", "redacted_thinking")  # signed, and dropped from history by some clients


class MessagesConversation(Reader):
    def scan(self, body: dict, path: str, scan: Scan) -> None:
        tools = body.get("tools")
        tools_mark(scan, tools)
        for tool in tools if isinstance(tools, list) else ():
            if isinstance(tool, dict) and "cache_control" in tool:
                _breakpoint(scan, 0, tool["cache_control"])
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
        for message in messages if isinstance(messages, list) else ():
            if not isinstance(message, dict):
                continue
            scan.mark(f"{message.get('role')}")
            content = message.get("content")
            if isinstance(content, str):
                scan.text(content)
            elif isinstance(content, list):
                link = len(scan.links)
                for block in content:
                    _block(scan, block, link)
            scan.close()
        if isinstance(body.get("cache_control"), dict):
            _breakpoint(scan, -1, body["cache_control"])


def _block(scan: Scan, block: object, link: int) -> None:
    if not isinstance(block, dict):
        if isinstance(block, str):
            scan.text(block)
        return
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        if isinstance(text, str):
            scan.text(text)
    elif kind == "tool_use":
        scan.mark(f"u|{block.get('id')}|{block.get('name')}")
    elif kind == "tool_result":
        scan.mark(f"r|{block.get('tool_use_id')}")
        _content(scan, block.get("content"), link)
    elif kind in _SKIPPED:
        return
    elif kind in ("image", "document"):
        source = block.get("source")
        if isinstance(source, dict):
            scan.mark(f"{kind}|{source.get('type')}|{source.get('media_type')}|{source.get('url')}|"
                      f"{source.get('file_id')}")
            if isinstance(source.get("data"), str):
                scan.opaque(source["data"])
            elif isinstance(source.get("content"), list):  # a document of blocks
                for inner in source["content"]:
                    _block(scan, inner, link)
    else:  # server tools and their results, search results, …
        scan.mark(f"{kind}|{block.get('id')}|{block.get('name')}|{block.get('tool_use_id')}")
        _content(scan, block.get("content"), link)
    if "cache_control" in block:
        _breakpoint(scan, link, block["cache_control"])


def _content(scan: Scan, content: object, link: int) -> None:
    """A result's content: a string, or blocks of their own."""
    if isinstance(content, str):
        scan.text(content)
    elif isinstance(content, list):
        for inner in content:
            _block(scan, inner, link)


def _breakpoint(scan: Scan, link: int, marker: object) -> None:
    if not isinstance(marker, dict):
        return
    if scan.breakpoint != -1:
        scan.breakpoint = link
    ttl = marker.get("ttl", DEFAULT_TTL)
    scan.cache(duration(ttl), f"cache_control ttl {ttl}")


READER = MessagesConversation()

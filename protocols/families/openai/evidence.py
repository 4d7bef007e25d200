"""What the conversations of both OpenAI protocols say alike (protocols/evidence.py): the instruction roles,
a message's content parts, and the prompt cache's lifetime. OpenAI caches any prompt's prefix by itself: the cache
prefix is the root, or the message of the last explicit `prompt_cache_breakpoint` part. Its lifetime:
`prompt_cache_retention` ("in_memory": 5 to 10 minutes idle, "24h"), `prompt_cache_options.ttl` and the breakpoints'
`ttl` (gpt-5.6 and later), the longest asked.
"""

from __future__ import annotations

from protocols.evidence import Scan, duration

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

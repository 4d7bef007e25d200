"""A key's masked form as docs/security.md states the rule (written here from the docs, not taken from the product):
at most a quarter of the key and never more than 8 characters, its last 4 (fewer under 16), its start where two or
more more fit; alone in its pool's masked forms (a pool's keys that mask alike add ` #<place>`)."""


def masked(key: str) -> str:
    shown = min(len(key) // 4, 8)
    tail = min(shown, 4)
    head = shown - tail if shown - tail >= 2 else 0
    return key[:head] + "…" + (key[-tail:] if tail else "")

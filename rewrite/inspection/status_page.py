"""The status page as a browser shows it: one self-contained page (rewrite/inspection/status_page.html: its CSS and
script inline, nothing fetched from elsewhere) that draws the page's data (rewrite/inspection/status.py `page`),
embedded in it, and every few seconds draws it again from `?format=json`. The drawing is the browser's: the proxy
only serializes the data. Pure."""

from __future__ import annotations

import json
from pathlib import Path

SHELL = (Path(__file__).parent / "status_page.html").read_text(encoding="utf-8").split("__DATA__")


def render_html(data: dict) -> bytes:
    # (`<` escaped: no text from upstream can close the script element that holds the data)
    embedded = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    return (SHELL[0] + embedded + SHELL[1]).encode()

"""A mitmdump addon that records each request's body exactly as the client sent it, before any other addon sees
it: loaded first (`mitmdump -s tests/support/witness_addon.py -s addons/rotator.py … --set witness_dir=DIR`), it
lets a test check that a body reached the fake vendor byte for byte (a signed Claude Code body must: its billing
line carries a hash of it). Never recompute such a hash; compare the bytes.

Each request with a body is written to `DIR/<n>.body`, and a line `{"n", "method", "host", "path", "size"}` is
appended to `DIR/index.jsonl`; `witnessed(DIR)` reads them back.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from mitmproxy import ctx, http


class Witness:
    def __init__(self) -> None:
        self._count = itertools.count()

    def load(self, loader) -> None:
        loader.add_option("witness_dir", str, "", "Where to record the bodies clients send (off when empty).")

    def request(self, flow: http.HTTPFlow) -> None:
        body = flow.request.raw_content
        if not ctx.options.witness_dir or not body:
            return
        where = Path(ctx.options.witness_dir)
        where.mkdir(parents=True, exist_ok=True)
        n = next(self._count)
        (where / f"{n}.body").write_bytes(body)
        line = {"n": n, "method": flow.request.method, "host": flow.request.pretty_host,
                "path": flow.request.path, "size": len(body)}
        with (where / "index.jsonl").open("a") as f:
            f.write(json.dumps(line) + "\n")


def witnessed(where: Path) -> list[tuple[dict, bytes]]:
    """Every recorded request: its index line and its body."""
    index = where / "index.jsonl"
    if not index.exists():
        return []
    lines = [json.loads(line) for line in index.read_text().splitlines() if line]
    return [(line, (where / f"{line['n']}.body").read_bytes()) for line in lines]


addons = [Witness()]

"""scripts/files-per-request's measuring addon: which files ran code while mitmdump served one request.

Loaded before Rotator (`mitmdump -s scripts/files_lib/addon.py -s addons/rotator.py ...`), so that its hooks run
first. After FILES_WARMUP requests (default 1), the next request's `requestheaders` turns `sys.setprofile` and
`threading.setprofile_all_threads` on (every thread, those running and those to come); the same flow's `response`
(or `error`), seen by a second addon this one appends at the very end of mitmproxy's chain once running, turns them
off, after every other addon's hook for it. The files in which a Python function ran (a `call` event: a function
entered, a generator or coroutine resumed), each with the names of those functions, are written to FILES_OUT as
JSON; which of them are the project's is for the caller to decide (scripts/files_lib/counting.py).

Only Python functions are seen (a `call` event), not C functions called from them.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

from mitmproxy import ctx, http

OUT = Path(os.environ.get("FILES_OUT", "files-per-request.json"))
WARMUP = int(os.environ.get("FILES_WARMUP", "1"))


class _Profile:
    def __init__(self) -> None:
        self.code: set = set()  # the code objects of the functions that ran
        self.on = False

    def _seen(self, frame, event, arg) -> None:
        if event == "call":
            self.code.add(frame.f_code)

    def files(self) -> dict[str, list[str]]:
        """Each file that ran code, with the names of its functions that ran."""
        names: dict[str, set[str]] = {}
        for code in self.code:
            names.setdefault(code.co_filename, set()).add(code.co_qualname)
        return {f: sorted(n) for f, n in sorted(names.items())}

    def start(self) -> None:
        self.on = True
        threading.setprofile_all_threads(self._seen)
        sys.setprofile(self._seen)

    def stop(self) -> None:
        sys.setprofile(None)
        threading.setprofile_all_threads(None)
        self.on = False


class FilesPerRequest:
    def __init__(self) -> None:
        self.seen = 0
        self.flow_id: str | None = None
        self.profile = _Profile()

    def running(self) -> None:
        ctx.master.addons.add(_End(self))

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self.seen += 1
        if self.seen == WARMUP + 1:
            self.flow_id = flow.id
            self.profile.start()

    def end(self, flow: http.HTTPFlow) -> None:
        if flow.id != self.flow_id or not self.profile.on:
            return
        self.profile.stop()
        status = flow.response.status_code if flow.response is not None else None
        trail = (flow.metadata.get("rotator") or {}).get("trail") or []
        record = {"files": self.profile.files(), "status": status,
                  "error": str(flow.error) if flow.error is not None else None,
                  "taken": [step.get("why", "") for step in trail]}  # (why each attempt's key was taken)
        OUT.with_suffix(".part").write_text(json.dumps(record, indent=1))
        OUT.with_suffix(".part").replace(OUT)


class _End:
    """The end of the measured request: after every other addon's hook for its response."""

    def __init__(self, owner: FilesPerRequest) -> None:
        self.owner = owner

    def response(self, flow: http.HTTPFlow) -> None:
        self.owner.end(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self.owner.end(flow)


addons = [FilesPerRequest()]

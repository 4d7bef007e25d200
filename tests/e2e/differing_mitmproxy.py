"""addons/rotator.py in a mitmproxy whose connection handler differs from what the in-memory hand-off uses
(`server_event` takes its event under another name, as a later mitmproxy might): the fallback's end-to-end test."""

import sys
from pathlib import Path

from mitmproxy.proxy import server

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
_server_event = server.ConnectionHandler.server_event


async def server_event(self, received):
    await _server_event(self, received)


server.ConnectionHandler.server_event = server_event

from addons.rotator import addons  # noqa: E402,F401  (after the patch above; the import loads the addons)

"""Hands intercepted flows to the engine in memory rather than over loopback TCP.

mitmproxy streams a response only from a server connection, so Interception points each intercepted flow at
Rotator's loopback server. mitmproxy opens server connections with `asyncio.open_connection`; while this addon
runs, a connection to one of the loopback server's own ports is made in memory instead
(rewrite/intake/memory_pipe.py): the same HTTP/1.1 conversation, without the kernel's send, receive and poll for every
streamed event. Every other connection is opened as before.

The bytes the engine writes also skip the wake-up of mitmproxy's reading task: while that task is idle, they go
straight to its connection handler, as the task would hand them on (`direct_reads`).

Both rely on mitmproxy's internals, reached only through rewrite/internals.py (with what they buy, measured, and the
mitmproxy versions they were checked on). At start-up `internals_mismatch` checks the installed mitmproxy for each
of them (the code itself, not its version number); if one differs, the hand-off stays off and Rotator uses loopback
TCP, as with `rotator_in_memory=false`, after a one-line warning.
"""

from __future__ import annotations

import asyncio
import logging

from mitmproxy import ctx, version

from rewrite.internals import direct_reads, install_open_connection, internals_mismatch, opening_connection
from rewrite.surface import LAST_CHUNK, Engine

logger = logging.getLogger(__name__)


class Handoff:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._installed = False

    def load(self, loader) -> None:
        loader.add_option(
            "rotator_in_memory", bool, True,
            "Hand intercepted LLM calls from mitmproxy to Rotator's engine in memory. Off: over a loopback TCP "
            "connection (slower; for comparing or debugging).",
        )

    def configure(self, updated: set[str]) -> None:
        if "rotator_in_memory" in updated:
            self._install() if ctx.options.rotator_in_memory else self._uninstall()

    def done(self) -> None:
        self._uninstall()

    def _install(self) -> None:
        if self._installed:
            return
        if differs := internals_mismatch():
            logger.warning("rotator: in-memory hand-off off: mitmproxy %s differs from what it uses (%s); using "
                           "loopback TCP", version.VERSION, differs)
            return
        server = self.engine.server
        opening = asyncio.open_connection

        async def open_connection(host=None, port=None, **kwargs):
            if host == "127.0.0.1" and port in server.ports and not kwargs.get("local_addr"):
                # Suspend once, as a real connect does: mitmproxy may run this eagerly, and records the connection
                # as opening only after this first suspension.
                await asyncio.sleep(0)
                reader, writer = server.connect_in_memory(port)
                reader.sink = direct_reads(*opening_connection(), LAST_CHUNK)
                return reader, writer
            return await opening(host, port, **kwargs)

        install_open_connection(open_connection)
        self._installed = True

    def _uninstall(self) -> None:
        if self._installed:
            install_open_connection(None)
            self._installed = False

"""Hands intercepted flows to the engine in memory rather than over loopback TCP.

mitmproxy streams a response only from a server connection, so Interception points each intercepted flow at
Rotator's loopback server. mitmproxy opens server connections with `asyncio.open_connection`; while this addon
runs, a connection to one of the loopback server's own ports is made in memory instead
(rewrite/memory_pipe.py): the same HTTP/1.1 conversation, without the kernel's send, receive and poll for every
streamed event. Every other connection is opened as before.
"""

from __future__ import annotations

import asyncio
import logging
import types

from mitmproxy import ctx
from mitmproxy.proxy import server as proxy_server

from rewrite.engine import Engine

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
        if getattr(proxy_server, "asyncio", None) is not asyncio:  # mitmproxy changed how it connects
            logger.warning("rotator: in-memory hand-off unavailable with this mitmproxy; using loopback TCP")
            return
        server = self.engine.server
        opening = asyncio.open_connection

        async def open_connection(host=None, port=None, **kwargs):
            if host == "127.0.0.1" and port in server.ports and not kwargs.get("local_addr"):
                # Suspend once, as a real connect does: mitmproxy may run this eagerly, and records the connection
                # as opening only after this first suspension.
                await asyncio.sleep(0)
                return server.connect_in_memory(port)
            return await opening(host, port, **kwargs)

        # A copy of the asyncio module seen by mitmproxy's connection handler only: nothing else changes.
        shim = types.ModuleType("asyncio")
        shim.__dict__.update(asyncio.__dict__)
        shim.open_connection = open_connection
        proxy_server.asyncio = shim
        self._installed = True

    def _uninstall(self) -> None:
        if self._installed:
            proxy_server.asyncio = asyncio
            self._installed = False

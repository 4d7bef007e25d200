"""While the Handoff addon runs, mitmproxy's connections to Rotator's loopback server are made in memory; every
other connection mitmproxy opens is a real one, and turning the option off restores mitmproxy as it was."""

import asyncio
import dataclasses
import logging
import types
from types import SimpleNamespace

import pytest
from mitmproxy import version
from mitmproxy.proxy import server as proxy_server
from mitmproxy.test import taddons

import rewrite.internals as internals_module
from addons.handoff import Handoff
from rewrite.intake.loopback import LoopbackServer
from rewrite.internals import internals_mismatch


async def answer(request, responder):
    responder.start(200, [("content-type", "text/plain")])
    responder.write(b"answered " + request.target.encode())


async def ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n")
    await reader.readuntil(b"\r\n\r\n")
    return await reader.readuntil(b"0\r\n\r\n")


async def test_connections_to_the_loopback_server_skip_the_kernel_and_others_do_not():
    server = LoopbackServer(answer)
    handoff = Handoff(SimpleNamespace(server=server))
    elsewhere = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    other_port = elsewhere.sockets[0].getsockname()[1]
    with taddons.context(handoff) as tctx:
        tctx.configure(handoff, rotator_in_memory=True)
        port = server.acquire_port("client")
        await asyncio.sleep(0)  # the loopback port starts listening

        reader, writer = await proxy_server.asyncio.open_connection("127.0.0.1", port, local_addr=None)
        assert writer.get_extra_info("socket") is None  # in memory
        assert writer.get_extra_info("peername") == ("127.0.0.1", port)
        assert b"answered /x" in await ask(reader, writer)
        writer.close()

        _, other = await proxy_server.asyncio.open_connection("127.0.0.1", other_port, local_addr=None)
        assert other.get_extra_info("socket") is not None  # a real connection
        other.close()

        tctx.configure(handoff, rotator_in_memory=False)
        assert proxy_server.asyncio is asyncio
        reader, writer = await proxy_server.asyncio.open_connection("127.0.0.1", port)
        assert writer.get_extra_info("socket") is not None
        assert b"answered /x" in await ask(reader, writer)
        writer.close()

        tctx.configure(handoff, rotator_in_memory=True)
    handoff.done()
    assert proxy_server.asyncio is asyncio
    elsewhere.close()
    server.close()


def test_the_installed_mitmproxy_has_every_internal_the_hand_off_uses():
    assert internals_mismatch() is None


class Shapes:
    """mitmproxy internals the hand-off uses, each changed as a later version might change it."""

    @staticmethod
    def connects_another_way(monkeypatch):
        async def open_connection(self, command):
            await self.connect_stream(command)

        monkeypatch.setattr(proxy_server.ConnectionHandler, "open_connection", open_connection)

    @staticmethod
    def opens_with_other_parameters(monkeypatch):
        async def open_connection(self, command, timeout):
            self.transports[command.connection] = await asyncio.open_connection(timeout=timeout)

        monkeypatch.setattr(proxy_server.ConnectionHandler, "open_connection", open_connection)

    @staticmethod
    def drops_the_server_event_lock(monkeypatch):
        def __init__(self, context):
            self.transports = {}

        monkeypatch.setattr(proxy_server.ConnectionHandler, "__init__", __init__)

    @staticmethod
    def imports_asyncio_another_way(monkeypatch):
        monkeypatch.setattr(proxy_server, "asyncio", types.ModuleType("asyncio"))

    @staticmethod
    def renames_received_data(monkeypatch):
        @dataclasses.dataclass
        class DataReceived:
            connection: object
            payload: bytes

        monkeypatch.setattr(internals_module.events, "DataReceived", DataReceived)

    @staticmethod
    def keeps_no_writer(monkeypatch):
        @dataclasses.dataclass
        class ConnectionIO:
            handler: object = None
            stream: object = None

        monkeypatch.setattr(proxy_server, "ConnectionIO", ConnectionIO)


@pytest.mark.parametrize("change", [name for name in vars(Shapes) if not name.startswith("_")])
def test_a_mitmproxy_whose_internals_differ_gets_loopback_tcp_and_one_warning(monkeypatch, caplog, change):
    getattr(Shapes, change)(monkeypatch)
    differs = internals_mismatch()
    assert differs is not None
    connecting = proxy_server.asyncio
    handoff = Handoff(SimpleNamespace(server=LoopbackServer(answer)))
    with taddons.context(handoff) as tctx, caplog.at_level(logging.WARNING, logger="addons.handoff"):
        tctx.configure(handoff, rotator_in_memory=True)
        assert proxy_server.asyncio is connecting  # mitmproxy connects as it always does: loopback TCP
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning == (f"rotator: in-memory hand-off off: mitmproxy {version.VERSION} differs from what it uses "
                       f"({differs}); using loopback TCP")
    handoff.done()

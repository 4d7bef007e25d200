"""While the Handoff addon runs, mitmproxy's connections to Rotator's loopback server are made in memory; every
other connection mitmproxy opens is a real one, and turning the option off restores mitmproxy as it was."""

import asyncio
from types import SimpleNamespace

from mitmproxy.proxy import server as proxy_server
from mitmproxy.test import taddons

from addons.handoff import Handoff
from rewrite.loopback import LoopbackServer


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

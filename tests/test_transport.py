"""The upstream transport against a raw loopback server: framing, keep-alive, and errors as httpx's."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewrite.intake.big_json import Upload
from rewrite.upstream.client import UpstreamClient
from rewrite.upstream.framing import outgoing
from rewrite.upstream.transport import FastBody, LeanTransport
from tests.support.timing import eventually


class RawServer:
    """Answers each request on a connection with the next scripted list of byte pieces, written `pause` apart: the
    pause stays, a real socket's arrivals being the thing under test (pieces written together may arrive as one)."""

    def __init__(self, answers: list[list[bytes]], pause: float = 0.005) -> None:
        self.answers = answers
        self.pause = pause
        self.requests: list[bytes] = []
        self.connections = 0
        self.written = 0  # pieces written, on every connection
        self.ended = 0  # connections the server is done with

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def _serve(self, reader, writer):
        self.connections += 1
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)
                self.requests.append(head + await reader.readexactly(length))
                for piece in self.answers.pop(0):
                    if piece == b"<close>":
                        writer.close()
                        return
                    writer.write(piece)
                    await writer.drain()
                    self.written += 1
                    await asyncio.sleep(self.pause)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.ended += 1
        writer.close()


def chunked(*pieces: bytes) -> list[bytes]:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    return [head, *(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces), b"0\r\n\r\n"]


async def fetch(url: str, transport: LeanTransport | httpx.AsyncClient) -> tuple[httpx.Response, list[bytes]]:
    """One request; pass the same client to see connections reused (closing a client closes its transport)."""
    if isinstance(transport, LeanTransport):
        async with httpx.AsyncClient(transport=transport) as client:
            return await fetch(url, client)
    async with transport.stream("POST", url + "/v1/chat/completions", content=b'{"a": 1}') as resp:
        return resp, [piece async for piece in resp.aiter_raw()]


async def test_chunked_stream_arrives_piece_by_piece_and_the_connection_is_reused():
    async with RawServer([chunked(b"data: 1\n\n", b"data: 2\n\n"), chunked(b"again")]) as server:
        transport = httpx.AsyncClient(transport=LeanTransport())
        resp, pieces = await fetch(server.url, transport)
        assert resp.status_code == 200 and resp.headers["content-type"] == "text/event-stream"
        assert pieces == [b"data: 1\n\n", b"data: 2\n\n"]
        _, pieces = await fetch(server.url, transport)
        assert pieces == [b"again"] and server.connections == 1
        assert server.requests[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert server.requests[0].endswith(b'Content-Length: 8\r\n\r\n{"a": 1}')


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=6), st.integers(1, 7))
def test_chunk_framing_split_anywhere_gives_the_body_back(chunks, step):
    body = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + b"".join(
        b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nx-trailer: 1\r\n\r\n"
    pieces = [body[i : i + step] for i in range(0, len(body), step)]

    async def go():
        async with RawServer([pieces], pause=0) as server:
            _, got = await fetch(server.url, LeanTransport())
            return b"".join(got)

    assert asyncio.run(go()) == b"".join(chunks)


async def test_content_length_and_close_delimited_bodies():
    answers = [[b"HTTP/1.1 429 Too Many\r\nretry-after: 3\r\ncontent-length: 5\r\n\r\n", b"slow!"],
               [b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n", b"until ", b"the end", b"<close>"]]
    async with RawServer(answers) as server:
        transport = httpx.AsyncClient(transport=LeanTransport())
        resp, pieces = await fetch(server.url, transport)
        assert resp.status_code == 429 and resp.headers["retry-after"] == "3" and b"".join(pieces) == b"slow!"
        resp, pieces = await fetch(server.url, transport)
        assert b"".join(pieces) == b"until the end"


async def test_a_cut_chunked_body_is_a_remote_protocol_error():
    async with RawServer([chunked(b"data: 1\n\n")[:-1] + [b"<close>"]]) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            await fetch(server.url, LeanTransport())


async def test_a_body_cut_in_its_trailers_is_a_remote_protocol_error():
    async with RawServer([chunked(b"data: 1\n\n")[:-1] + [b"0\r\nx-trailer: 1\r\n", b"<close>"]]) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            await fetch(server.url, LeanTransport())


@pytest.mark.parametrize("head", [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                                  b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
                                  b"HTTP/1.1 200 OK\r\nx-a : 1\r\ncontent-length: 2\r\n\r\n",
                                  b"HTTP/1.1 200 OK\nx-injected: 1\r\ncontent-length: 2\r\n\r\n"])
async def test_a_head_h11_would_refuse_is_refused_and_its_connection_dropped(head):
    async with RawServer([[head, b"ok"], [OK]]) as server:
        transport = LeanTransport()
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.RemoteProtocolError, match="malformed"):
                await asyncio.wait_for(fetch(server.url, client), 5)
            await fetch(server.url, client)
        assert server.connections == 2


async def test_connect_errors_are_httpx_connect_errors():
    with pytest.raises(httpx.ConnectError):
        await fetch("http://127.0.0.1:9", LeanTransport())


async def test_an_abandoned_body_closes_its_connection():
    async with RawServer([chunked(b"a", b"b", b"c"), chunked(b"fresh")]) as server:
        client = httpx.AsyncClient(transport=LeanTransport())
        async with client.stream("POST", server.url + "/x", content=b"") as resp:
            async for _ in resp.aiter_raw():
                break
        _, pieces = await fetch(server.url, client)
        assert pieces == [b"fresh"] and server.connections == 2


async def test_bytes_that_arrived_before_a_reset_are_still_delivered():
    import socket
    import struct

    answered, reset = asyncio.Event(), asyncio.Event()

    async def serve(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(chunked(b"data: 1\n\n", b"data: 2\n\n")[0] + b"9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n")
        await writer.drain()
        await answered.wait()  # (the client has the answer's head, and the data behind it)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        reset.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    got = []
    async with httpx.AsyncClient(transport=LeanTransport()) as client:
        async with client.stream("POST", url + "/x", content=b"") as resp:
            answered.set()
            await reset.wait()  # the reset arrives while the data sits unread
            await turns(5)
            with pytest.raises(httpx.ReadError):
                async for piece in resp.aiter_raw():
                    got.append(piece)
    server.close()
    assert b"".join(got) == b"data: 1\n\ndata: 2\n\n"


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def turns(n: int) -> None:
    """n turns of the loop (each looks at the sockets once): no time passes."""
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_an_idle_connection_the_server_closes_leaves_the_pool_at_once(how):
    import socket
    import struct

    pooled = asyncio.Event()

    async def serve(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)
        await writer.drain()
        await pooled.wait()  # (the client has put the connection back in its pool)
        if how == "reset":
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    transport = LeanTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(url + "/")).text == "ok"
        assert transport.idle == 1
        pooled.set()
        await eventually(lambda: transport.idle == 0, what="the closed connection left the pool")
    server.close()


async def test_an_idle_connection_with_bytes_nobody_asked_for_is_not_reused():
    stale = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n"  # sent on an idle connection, kept open
    async with RawServer([[OK, stale], [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfresh"]]) as server:
        client = httpx.AsyncClient(transport=LeanTransport())
        assert (await client.post(server.url + "/x")).text == "ok"
        await eventually(lambda: server.written == 2)  # (the stale answer is on its way)
        await turns(5)
        second = await client.post(server.url + "/x")
        assert second.status_code == 200 and second.text == "fresh" and server.connections == 2


async def test_a_request_racing_the_servers_idle_close_goes_out_again_on_a_new_connection():
    # The server takes the second request on the kept-alive connection but hangs up without a byte of answer,
    # as a server does whose idle timeout fires while the request is on its way.
    async with RawServer([[OK], [b"<close>"], [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfresh"]]) as server:
        client = httpx.AsyncClient(transport=LeanTransport())
        assert (await client.post(server.url + "/x", content=b"1")).text == "ok"
        second = await client.post(server.url + "/x", content=b"2")
        assert second.text == "fresh" and server.connections == 2
        assert [r.endswith(b"2") for r in server.requests] == [False, True, True]


async def test_a_new_connection_closed_without_an_answer_is_an_error_at_once():
    async with RawServer([[b"<close>"], [OK]]) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            await fetch(server.url, LeanTransport())
        assert server.connections == 1


# -- push: the body handed over in the connection's data callback (what the engine does once a stream is under way)

@contextlib.asynccontextmanager
async def streamed(client: UpstreamClient, url: str, content: bytes) -> AsyncIterator[httpx.Response]:
    resp = await client.send(client.build_request("POST", url, content=content), stream=True)
    try:
        yield resp
    finally:
        await resp.aclose()


def fast(resp: httpx.Response) -> FastBody:
    """The response's body as the engine finds it (rewrite/exchange: piece_reader, piece_pusher)."""
    assert isinstance(resp.stream, FastBody)
    return resp.stream


async def read_pushed(resp: httpx.Response, stop_every: int | None = None, fail_at: int | None = None) -> list[bytes]:
    """The body as the engine reads it: pushed while it can be, the rest (and the end) through next_piece."""
    body = fast(resp)
    got: list[bytes] = []

    def on_piece(piece: bytes) -> bool:
        got.append(piece)
        if fail_at is not None and len(got) == fail_at:
            raise ValueError("the engine failed")
        return stop_every is not None and len(got) % stop_every == 0

    while True:
        await body.push(on_piece)
        piece = await body.next_piece()
        if not piece:
            return got
        got.append(piece)


async def fetch_pushed(url: str, client: UpstreamClient, **kw) -> list[bytes]:
    async with streamed(client, url + "/v1/chat/completions", b"{}") as resp:
        return await read_pushed(resp, **kw)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=6), st.integers(1, 7),
       st.sampled_from([None, 1, 2]))
def test_a_pushed_chunked_body_split_anywhere_comes_back_whole(chunks, step, stop_every):
    body = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + b"".join(
        b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nx-trailer: 1\r\n\r\n"
    pieces = [body[i : i + step] for i in range(0, len(body), step)]

    async def go():
        async with RawServer([pieces, chunked(b"next")], pause=0) as server:
            async with UpstreamClient(LeanTransport()) as client:
                got = await fetch_pushed(server.url, client, stop_every=stop_every)
                again = await fetch_pushed(server.url, client)
                return b"".join(got), again, server.connections

    got, again, connections = asyncio.run(go())
    assert got == b"".join(chunks)
    assert again == [b"next"] and connections == 1  # the connection went back to the pool at the body's end


async def test_pieces_are_pushed_one_per_arrival_without_waking_the_reader():
    async with RawServer([chunked(b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n")], pause=0.02) as server:
        async with UpstreamClient(LeanTransport()) as client:
            async with streamed(client, server.url + "/x", b"") as resp:
                body = fast(resp)
                first = await body.next_piece()
                pushed: list[bytes] = []
                await body.push(lambda p: pushed.append(p) or False)  # returns at the body's last chunk
                assert await body.next_piece() == b""
    assert [first, *pushed] == [b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n"]


async def test_pushed_content_length_and_close_delimited_bodies():
    answers = [[b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n", b"hello", b" world"],
               [b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n", b"until ", b"the end", b"<close>"]]
    async with RawServer(answers) as server:
        async with UpstreamClient(LeanTransport()) as client:
            assert b"".join(await fetch_pushed(server.url, client)) == b"hello world"
            assert b"".join(await fetch_pushed(server.url, client)) == b"until the end"


async def test_a_cut_body_while_pushing_is_still_a_remote_protocol_error():
    async with RawServer([chunked(b"data: 1\n\n", b"data: 2\n\n")[:-1] + [b"<close>"]]) as server:
        async with UpstreamClient(LeanTransport()) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await fetch_pushed(server.url, client)


async def test_an_error_in_the_pushed_callback_is_raised_to_the_reader_and_drops_the_connection():
    async with RawServer([chunked(b"a", b"b", b"c"), chunked(b"fresh")]) as server:
        async with UpstreamClient(LeanTransport()) as client:
            with pytest.raises(ValueError, match="the engine failed"):
                await fetch_pushed(server.url, client, fail_at=2)
            assert await fetch_pushed(server.url, client) == [b"fresh"]
            assert server.connections == 2


async def test_a_cancelled_push_drops_the_connection_and_pushes_nothing_more():
    async with RawServer([chunked(b"a", b"b", b"c", b"d"), chunked(b"fresh")], pause=0.02) as server:
        async with UpstreamClient(LeanTransport()) as client:
            got: list[bytes] = []
            async with streamed(client, server.url + "/x", b"") as resp:
                pushing = asyncio.ensure_future(fast(resp).push(lambda p: got.append(p) or False))
                await eventually(lambda: got)
                pushing.cancel()
                await asyncio.gather(pushing, return_exceptions=True)
                seen = len(got)
                await eventually(lambda: server.ended == 1)  # the server wrote the rest, or found it hung up
                await turns(5)
                assert len(got) == seen
            assert await fetch_pushed(server.url, client) == [b"fresh"] and server.connections == 2


async def test_an_upload_goes_out_whole_with_its_length_and_again_on_the_next_request():
    upload = Upload([b'{"a": "', b"x" * 100_000, b'"}'])
    answers = [[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", b"ok"]] * 2
    async with RawServer(answers) as server:
        transport = LeanTransport()
        for _ in range(2):
            request = outgoing("POST", server.url + "/v1/chat/completions", [], upload, None)
            resp = await transport.send(request)
            assert resp.status_code == 200 and await resp.aread() == b"ok"
        await transport.aclose()
    for sent in server.requests:
        head, _, body = sent.partition(b"\r\n\r\n")
        assert b"Content-Length: %d" % upload.size in head.split(b"\r\n")
        assert body == b"".join(upload.pieces)

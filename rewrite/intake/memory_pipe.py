"""An in-memory, full-duplex connection between two asyncio stream endpoints on one event loop.

It behaves like a loopback TCP connection to both sides (asyncio's own `StreamReader`/`StreamWriter` on each end,
EOF, close, and flow control through the readers' limits), without the kernel: a write is handed to the other
end's protocol at once, so a streamed event costs no send/recv syscalls and no extra turn of the event loop.
"""

from __future__ import annotations

import asyncio

from rewrite.internals import PipeReader

Address = tuple[str, int]
__all__ = ["Pair", "PipeEnd", "PipeReader", "open_pipe"]


class PipeEnd(asyncio.Transport):
    """One end's transport: what it writes arrives at the other end's protocol."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sockname: Address, peername: Address, reader: PipeReader,
                 protocol: asyncio.StreamReaderProtocol) -> None:
        super().__init__({"sockname": sockname, "peername": peername})
        self._loop = loop
        self._protocol: asyncio.BaseProtocol = protocol
        self.peer: PipeEnd | None = None
        self._closing = False
        self._eof_sent = False
        self._reading = True
        self._writing_paused = False  # the other end asked us to stop: its reader is full
        self._reader = reader  # the reader of `protocol`, fed directly while that protocol is ours
        self._reader_protocol = protocol

    # -- wiring

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def _stream_protocol(self) -> asyncio.Protocol:
        """Our protocol as a stream's, which takes bytes and an end of stream: asyncio's StreamReaderProtocol, or
        whatever was set in its place (a BufferedProtocol, which takes neither this way, is not supported)."""
        protocol = self._protocol
        assert isinstance(protocol, asyncio.Protocol)
        return protocol

    # -- writing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data or self._closing or self._eof_sent:
            return
        peer = self.peer
        if peer is None or peer._closing:
            return  # as on TCP, bytes written to a connection the other side has closed are lost
        if type(data) is not bytes:
            data = bytes(data)
        if peer._protocol is peer._reader_protocol:  # what its StreamReaderProtocol would do, one call less
            peer._reader.feed_data(data)
        else:
            peer._stream_protocol().data_received(data)

    def writelines(self, list_of_data) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._eof_sent or self._closing:
            return
        self._eof_sent = True
        peer = self.peer
        if peer is not None and not peer._closing:
            self._loop.call_soon(peer._eof)

    def get_write_buffer_size(self) -> int:
        # Nothing is ever buffered here; while the other end is full this reports a byte, so that writers that
        # look at the buffer before draining (rewrite/intake/loopback.py) wait.
        return 1 if self._writing_paused else 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 0)

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    # -- reading: asyncio's StreamReaderProtocol pauses us when its buffer is full

    def is_reading(self) -> bool:
        return self._reading and not self._closing

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            if self.peer is not None:
                self.peer._pause_writing()

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            if self.peer is not None:
                self.peer._resume_writing()

    def _pause_writing(self) -> None:
        if not self._writing_paused and not self._closing:
            self._writing_paused = True
            self._protocol.pause_writing()

    def _resume_writing(self) -> None:
        if self._writing_paused:
            self._writing_paused = False
            if not self._closing:
                self._protocol.resume_writing()

    # -- ending

    def _eof(self) -> None:
        if not self._closing and not self._stream_protocol().eof_received():
            self.close()

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop.call_soon(self._protocol.connection_lost, None)
        peer = self.peer
        if peer is not None and not peer._closing:
            # The other side reads an end of stream, as after a TCP FIN; it closes its end when it is done.
            if not self._eof_sent:
                self._eof_sent = True
                self._loop.call_soon(peer._eof)
            peer._resume_writing()

    def abort(self) -> None:
        self.close()


Pair = tuple[PipeReader, asyncio.StreamWriter]


def open_pipe(sockname: Address, peername: Address, limit: int = 2**16, peer_limit: int = 2**16) -> tuple[Pair, Pair]:
    """Two connected (reader, writer) pairs: the first end's address is `sockname`, the other's `peername`."""
    loop = asyncio.get_running_loop()
    ends: list[PipeEnd] = []
    for (local, remote), lim in (((sockname, peername), limit), ((peername, sockname), peer_limit)):
        reader = PipeReader(limit=lim, loop=loop)
        ends.append(PipeEnd(loop, local, remote, reader, asyncio.StreamReaderProtocol(reader, loop=loop)))
    a, b = ends
    a.peer, b.peer = b, a
    pairs: list[Pair] = []
    for end in ends:
        end._reader_protocol.connection_made(end)
        pairs.append((end._reader, asyncio.StreamWriter(end, end._reader_protocol, end._reader, loop)))
    return pairs[0], pairs[1]

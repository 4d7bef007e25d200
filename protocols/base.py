"""The contract every wire protocol fulfils for the engine.

Sans-I/O: nothing here touches a socket, a clock or mitmproxy. A protocol recognises its requests, and hands out
per-stream state machines that are fed parsed SSE events and asked what the client should receive.
"""

from __future__ import annotations

import json
from typing import ClassVar

from protocols.errors import TRUNCATED_MESSAGE
from protocols.events import Event, StreamParser
from protocols.sse import SSEParser

SSE = "text/event-stream"

# How a stream that stopped without its completion signal is ended for the client.
ENDING_LENGTH = "length"  # the protocol's own "ran out of tokens" ending: SDKs report a visibly truncated answer
ENDING_ERROR = "error"  # the protocol's in-stream error event: SDKs raise


class Repairer:
    """Per-stream state machine: fed every upstream event in order, it says what the client receives.

    `started` turns true with the first content-bearing event (the "first token"): before it, the engine may
    still retry the request on another key, so it holds the client's bytes back. A stream that reaches its
    completion signal without content counts as started too. `complete` turns true once the protocol's
    completion signal has passed (`finished`, once the stop reason before it has). `failed` turns true when that
    signal was an error: an upstream in-stream error event (which also counts as started and complete: it is
    forwarded, not retried), or one this repairer emitted. After `end()` or `error_event()` the stream counts as
    complete, so a second call adds nothing.

    A protocol whose vendors may fail a request inside a 200 stream, before any content (the Responses API's
    `response.failed` among the first events), may say so instead: `early_error` is then the status and body of
    the error answer that failure stands for, and the stream is complete and failed but not started, so the
    engine reads it as that answer (asked again when it is a transient one).
    """

    started: bool = False
    complete: bool = False
    failed: bool = False
    early_error: tuple[int, bytes] | None = None

    @property
    def finished(self) -> bool:
        """Whether the vendor said how the answer ends (its stop reason): the answer is whole even if the events
        after it (the completion signal, a last usage event) were lost; `end()` then closes it with the vendor's
        own stop reason, and it is not continued."""
        return self.complete

    def __init__(self, body: dict) -> None:
        """A repairer for the stream that answers this request body (`Protocol.repairer` builds it so)."""

    def feed(self, event: Event) -> bytes:
        """Bytes the client receives for this event (usually `event.raw`)."""
        raise NotImplementedError

    def quiet(self, block: bytes) -> bool:
        """Whether `feed` would pass this whole SSE block on unchanged and change no state, told from its bytes
        without parsing it (the engine then skips `feed`). False whenever that is not certain."""
        return False

    def end(self, ending: str = ENDING_LENGTH) -> bytes:
        """Bytes that close a stream that stopped here, so it says "truncated"; b"" if it is already complete."""
        if self.complete:
            return b""
        if ending == ENDING_ERROR:
            return self.truncation_error()
        self.complete = True
        return self.length_ending()

    def length_ending(self) -> bytes:
        """The protocol's own "ran out of tokens" ending for a stream that stopped here."""
        raise NotImplementedError

    def truncation_error(self) -> bytes:
        """The in-stream error that says the stream was truncated."""
        return self.error_event(TRUNCATED_MESSAGE, 500)

    def error_event(self, message: str, status: int = 502) -> bytes:
        """The protocol's in-stream error, for a failure after the client's headers were committed."""
        raise NotImplementedError



class RepairerAround(Repairer):
    """A repairer around another (`inner`): its state and endings are the inner one's; a subclass changes only what
    the inner one is fed (`feed`)."""

    inner: Repairer

    started = property(lambda self: self.inner.started)
    complete = property(lambda self: self.inner.complete)
    finished = property(lambda self: self.inner.finished)
    failed = property(lambda self: self.inner.failed)
    early_error = property(lambda self: self.inner.early_error)

    def end(self, ending: str = ENDING_LENGTH) -> bytes:
        return self.inner.end(ending)

    def error_event(self, message: str, status: int = 502) -> bytes:
        return self.inner.error_event(message, status)

def integer(obj: dict, key: str, default: int = 0) -> int:
    """`obj[key]`, an index a reader keeps (`default` when absent); TypeError if it is not an integer: an event of
    that shape cannot be followed, and the engine treats it as a broken body (rewrite/exchange/pump.py)."""
    value = obj.get(key, default)
    if type(value) is not int:
        raise TypeError(f"{key} is not an integer")
    return value


def count(obj: object, *keys: str) -> int:
    """The first of `keys` in `obj` holding a token count (an integer, not negative); 0 if none does. Usage of
    the wrong type counts nothing rather than breaking the stream it came with."""
    if isinstance(obj, dict):
        for key in keys:
            value = obj.get(key)
            if type(value) is int and value >= 0:
                return value
    return 0


def member(obj: object, key: str) -> dict:
    """`obj[key]` if both are objects, else an empty one."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def whole_json(text: str) -> bool:
    """Whether a tool call's streamed arguments are a whole JSON value (a cut leaves a prefix that is not)."""
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


class Aggregator:
    """Folds a stream's events into the protocol's non-stream JSON body.

    `truncated` is true while the stream has not reached its completion signal; `result()` then still gives a
    well-formed body that carries the protocol's "ran out of tokens" signal. `error` is the vendor error object
    of an in-stream error event, if one arrived: the engine should answer with an HTTP error instead.
    """

    error: dict | None = None

    def __init__(self, body: dict) -> None:
        """An aggregator for the stream that answers this request body (`Protocol.aggregator` builds it so)."""

    @property
    def truncated(self) -> bool:
        raise NotImplementedError

    def feed(self, event: Event) -> None:
        raise NotImplementedError

    def result(self) -> dict:
        raise NotImplementedError


class Protocol:
    """One wire protocol. Subclasses live one per protocol folder, whose registration (protocols/registration.py)
    carries one instance.

    The defaults fit a JSON API whose generation call is `POST ...<path_suffix>` with a `"stream": true` flag;
    a protocol overrides only what differs.
    """

    name: ClassVar[str]
    family: ClassVar[str]  # the vendor family whose providers speak it (protocols/families/): its `Family.name`
    stream_type: ClassVar[str] = SSE  # the content type of its streamed answers (`parser` reads them)
    heartbeat: ClassVar[bytes | None] = None  # a keepalive the protocol's SDKs ignore, or None if none is safe
    path_suffix: ClassVar[str] = ""
    model_in_path: ClassVar[bool] = False  # the model is named in the URL path (Gemini), not in the body
    # Request members that resume an answer the vendor holds (Gemini's `continuationToken`): no other protocol, and
    # no continuation Rotator writes, can carry them.
    vendor_held: ClassVar[tuple[str, ...]] = ()
    repairer_class: ClassVar[type[Repairer]]
    aggregator_class: ClassVar[type[Aggregator]]

    def matches(self, method: str, path: str) -> bool:
        """Whether a request (path without query) is this protocol's generation call."""
        return method.upper() == "POST" and path.endswith(self.path_suffix)

    def wants_stream(self, path: str, query: str, body: dict) -> bool:
        """Whether the client asked for a streamed answer."""
        return body.get("stream") is True

    def is_sse(self, path: str, query: str) -> bool:
        """Whether a streamed answer to this request is framed as `parser` reads it (SSE for most; if not, pass it
        through untouched)."""
        return True

    def parser(self) -> StreamParser:
        """The reader of its streams: SSE by default."""
        return SSEParser()

    def streams(self, content_type: str) -> bool:
        """Whether an answer of `content_type` is one of its streams."""
        return self.stream_type in content_type

    def model(self, path: str, body: dict) -> str:
        """The model a request asks for ("" if it names none)."""
        model = body.get("model")
        return model if isinstance(model, str) else ""

    def as_stream(self, path: str, query: str, body: dict) -> tuple[str, str, dict]:
        """The same request, asking the upstream for a stream (for forced upstream streaming)."""
        return path, query, {**body, "stream": True}

    def folds(self, body: dict) -> bool:
        """Whether a non-stream request may go upstream as a stream, folded back into its answer (forced upstream
        streaming): not one whose answer comes before the work is done."""
        return True

    def makes_state(self, body: dict) -> bool:
        """Whether the request makes state at its vendor besides its answer (a stored or a background response):
        sent twice, it would make it twice (a hedge is not sent for it)."""
        return False

    def held_by_vendor(self, body: dict) -> list[str]:
        """The members of `body` that resume an answer its vendor holds (`vendor_held`)."""
        return [name for name in self.vendor_held if name in body]

    def with_model(self, path: str, model: str) -> str:
        """The path asking for `model` instead (for a protocol whose model is named in the path)."""
        return path

    def foreign_query(self, query: str) -> str:
        """What of a client's query goes on to a provider other than the one it called (none by default: it may
        carry the client's credential for the vendor it called)."""
        return ""

    def repairer(self, body: dict) -> Repairer:
        return self.repairer_class(body)

    def aggregator(self, body: dict) -> Aggregator:
        return self.aggregator_class(body)

    def error_body(self, status: int, message: str) -> bytes:
        """A JSON error body in the vendor's shape for an HTTP error answered by Rotator itself."""
        raise NotImplementedError

"""What the client asked, read once per request and shared by every target and attempt: its protocol, body (and its
content-encoding: rewrite/intake/encoded.py), model, whether it streams, and the deadlines that follow from that."""

from __future__ import annotations

import copy
import dataclasses
import math

from protocols.base import Protocol
from protocols.envelope import Envelope, EnvelopedAnswers
from protocols.sse import dumps
from protocols.urls import path_problem, segment_problem, shown
from rewrite.accounting.usage import Meter
from rewrite.config import StreamingConfig
from rewrite.intake.big_json import Parsed, Upload, parse_body
from rewrite.intake.encoded import decode, encode
from rewrite.intake.loopback import LoopbackRequest
from rewrite.providers import Provider
from rewrite.routing.router import Route

MAX_DECODED = 64 << 20  # bytes a content-encoded body may decode to (limits.max_request_body)
IDENTITY = ("", "identity")  # a content-encoding that leaves the body as it is
NOT_JSON = "the request body is not valid JSON"


class ClientRequest:
    def __init__(self, request: LoopbackRequest, route: Route, streaming: StreamingConfig,
                 parsed: Parsed | None, max_body: int = MAX_DECODED) -> None:
        self.request = request
        self.route = route
        self.called: Provider = route.provider
        self.path, _, self.query = request.target.partition("?")
        self.client_path = self.path  # (the path as the client sent it: an envelope's, when one is opened)
        self.host = called_host(request.headers)
        self.body: dict = {}  # the parsed JSON body: a dict whenever `proto` is set, empty when there is none
        self.proto: Protocol | None = route.protocol
        self.refusal: str | None = None  # why the request is answered 400 before any upstream call
        # A body the client sent content-encoded (rewrite/intake/encoded.py): its encoding, and `plain`, the body
        # decoded; `request.body` stays as it came.
        self.encoding = encoding_of(request.headers)
        self.plain = request.body
        # A large body's skeleton (rewrite/intake/big_json.py): enough to send the upload as it came, not to rewrite it.
        self.skeletal = parsed is not None and parsed.skeletal
        self.parsed = parsed  # (what the intake or the big-body worker read of it: its skeleton, the evidence)
        self.places = parsed.places if parsed is not None else None  # (where its members are in its text)
        if self.proto is not None:
            if parsed is not None:
                body, self.refusal = parsed.body, parsed.refusal
            elif self.encoding is not None:  # (never a large upload: see Engine._handle)
                decoded = decode(request.body, self.encoding, max_body)
                body, self.refusal = parse_body(decoded) if decoded is not None else (None, None)
                self.plain = decoded or b""
            else:  # (a large upload comes parsed, or was joined into `request.body` when it could not be)
                body, self.refusal = parse_body(self.request.body)
            if body is None:
                self.proto = None  # a malformed body is forwarded untouched; the vendor answers it
            else:
                self.body = body
        # A wire's envelope (a login's, a cloud platform's: rewrite/providers/wire.py): the call inside is what the
        # engine reads and repairs; `envelope` is the client's body as it came, put back around it for its wire;
        # `opened` reads its answers' events, when they are in it too (and puts them back:
        # rewrite/exchange/enveloped.py).
        self.dialect: Envelope | None = None
        self.envelope: dict | None = None
        self.opened: EnvelopedAnswers | None = None
        envelope = self.called.envelope
        if self.proto is not None and envelope is not None and envelope.wraps(self.path):
            self._open(envelope)  # (a call in its envelope: its path stands for another protocol's)
        p, body = self.proto, self.body
        self.asked = p.model(self.path, body) if p is not None else ""
        self.client_stream = p is not None and p.wants_stream(self.path, self.query, body)
        # What is not streamed upstream has one deadline for the whole request (a client's stream has none).
        self.total_timeout = math.inf if self.client_stream else streaming.request_timeout
        if p is not None and self.client_stream and not p.is_sse(self.path, self.query):
            self.proto = None  # e.g. Gemini's JSON-array stream: forwarded as it comes
        self.heartbeat = self.proto.heartbeat if (self.proto is not None and self.client_stream) else None
        self.meter = Meter(self.proto, self.body, self.client_stream)

    def _open(self, envelope: Envelope) -> None:
        self.parse_whole()  # (a large envelope is opened whole: its inside is what is read)
        inside = envelope.opened(self.path, self.body)
        if inside is None:
            self.proto = None  # not an envelope after all: forwarded as it came, the vendor answers it
            self.body = {}
            return
        self.dialect, self.envelope = envelope, self.body
        self.opened = envelope.answers() if envelope.answers is not None else None
        self.path, body = inside
        if body is not self.body:  # (an envelope whose call is its body, as it came, keeps the client's bytes)
            self.plain = dumps(body)
        self.body = body

    def enveloped(self, path: str, content: bytes, body: dict) -> tuple[str, bytes]:
        """A plain call's path and body (`body`, `content` its JSON) put back in the client's envelope, for its
        wire (the client's own path when it asks the same)."""
        assert self.dialect is not None and self.envelope is not None
        return (self.dialect.envelope_path(self.client_path, path, body),
                self.dialect.enveloped(self.envelope, path, content))

    def continued(self, body: dict) -> ClientRequest:
        """This request asking for `body` instead (the continuation of a cut answer), as a stream."""
        proto = self.proto
        assert proto is not None
        path, query = self.path, self.query
        if not self.client_stream:
            path, query, body = proto.as_stream(path, query, body)
        other = copy.copy(self)
        target = path + (f"?{query}" if query else "")
        other.plain = dumps(body)
        sent = other.plain
        if self.dialect is not None:  # (in the client's envelope)
            path_sent, sent = self.enveloped(path, sent, body)
            target = path_sent + (f"?{query}" if query else "")
        sent = sent if self.encoding is None else encode(sent, self.encoding)  # (as the client sends)
        other.request = dataclasses.replace(self.request, target=target, body=sent, upload=None)
        other.path, other.query, other.body, other.skeletal, other.refusal = path, query, body, False, None
        other.client_stream, other.total_timeout = True, math.inf
        other.meter = Meter(proto, body, True)
        return other

    def client_bytes(self) -> bytes | Upload:
        """The client's request body as it is sent on untouched (content-encoded, if it came so)."""
        return self.request.upload or self.request.body

    @property
    def tokens(self) -> int:
        """Its prompt's tokens, estimated for the pools' quota windows: a token is about 4 bytes of its body."""
        return estimated_tokens(self.client_bytes())

    def encoded(self, content: bytes) -> bytes:
        """A rewritten body, encoded the way the client sent its own."""
        return content if self.encoding is None else encode(content, self.encoding)

    @property
    def repackaged(self) -> bool:
        """Whether the client's bytes are not the body read (content-encoded, or a login's envelope)."""
        return self.encoding is not None or self.dialect is not None

    def parse_whole(self) -> None:
        """Parse a large body read as its skeleton here after all: it is to be rewritten (this holds the event loop
        while it runs). Any other body is parsed already. One that JSON refuses after all (a control character in
        a long string, which its skeleton's reading does not look for) is refused: `refusal`."""
        if not self.skeletal:
            return
        upload = self.request.upload
        if upload is not None:
            self.request.body, self.request.upload = b"".join(upload.pieces), None
            self.plain = self.request.body
        body, refusal = parse_body(self.request.body)
        if body is None:  # (still its skeleton: nothing is written from it)
            self.refusal = refusal or NOT_JSON
        else:
            self.body, self.skeletal, self.places = body, False, None

    @property
    def size(self) -> int:
        """The bytes of its body (decoded, if it came encoded)."""
        upload = self.request.upload
        return upload.size if upload is not None else len(self.plain)

    def unsafe_url(self) -> str | None:
        """Why the client's path, or the model its path names, cannot go into an upstream URL; None if both can."""
        problem = path_problem(self.path)
        if problem is not None:
            return f"the request path {problem}: it is not sent upstream"
        p = self.route.protocol
        if p is not None and p.model_in_path:
            model = p.model(self.path, {})
            if (problem := segment_problem(model)) is not None:
                return f"the model name {shown(model)} {problem}: it cannot be sent in a URL"
        return None


def estimated_tokens(body: bytes | Upload | None) -> int:
    """A request's tokens as its body's size suggests (JSON and images count as text: an upper estimate)."""
    return (body.size if isinstance(body, Upload) else len(body or b"")) // 4


def encoding_of(headers: list[tuple[str, str]]) -> str | None:
    """A request's content-encoding, lowercased (None for none, or identity)."""
    value = next((v for n, v in headers if n.lower() == "content-encoding"), "").strip().lower()
    return None if value in IDENTITY else value


def called_host(headers: list[tuple[str, str]]) -> str:
    """The host the client called (its Host header, without the port)."""
    authority = next((v for n, v in headers if n.lower() == "host"), "").strip()
    if authority.startswith("["):
        return authority.partition("]")[0] + "]"
    return authority.rpartition(":")[0] if authority.count(":") == 1 else authority

"""Cross-protocol translation through the unified representation (`protocols.unified`).

Each protocol's `Translator` is in its folder (protocols/<name>/translate/) and comes with its registration
(protocols/registration.py). It is built from one module per direction and kind: "in" reads the protocol into the
unified form, "out" writes it. `request_in` reads a client's request, `request_out` writes the body sent upstream,
`answer_in` reads an upstream's answer and usage, `answer_out` writes the client's answer and errors, `stream_in`
is the decoder of an upstream's stream, `stream_out` the encoder of the client's stream; `vocabulary` holds the
names they share. A dialect of a protocol (another envelope, or other defaults, on the same wire) wraps the parts
it changes and builds its own `Translator` with `dataclasses.replace(TRANSLATOR, ...)`.

The functions in this module are what the engine calls: they take protocol names as registered in
`protocols.registry`, and turn a client body that is not a well-formed request into `TranslationError`.
"""

from __future__ import annotations

from protocols.capabilities import Capabilities
from protocols.registry import get as protocol
from protocols.registry import model_capabilities
from protocols.translate.base import (
    MALFORMED,
    Decoder,
    Encoder,
    StreamFolder,
    StreamTranslator,
    TranslationError,
    Translator,
    across_vendors,
)
from protocols.translate.common import error_from_body
from protocols.translate.registry import get, names
from protocols.unified import Request, ToolIds


def request_to_ir(protocol: str, body: dict, model: str = "", stream: bool | None = None) -> Request:
    """A client's request in the unified form (`Translator.read_request`). Gemini names the model and streaming
    in the path, not the body: pass them as `model` and `stream` (`stream` overrides the body's flag when given)."""
    return get(protocol).read_request(body, model, stream)


def translate_request(body: dict, client: str, upstream: str, model: str = "", stream: bool | None = None,
                      caps: Capabilities | None = None, forward_user_id: bool = False) -> dict:
    """A client's request body rewritten for an upstream of another protocol, fitted to what its model accepts
    (`caps`; the built-in table's entry for the request's model if not given)."""
    same_family = protocol(client).family == protocol(upstream).family
    request = across_vendors(request_to_ir(client, body, model, stream), same_family, forward_user_id)
    try:
        caps = caps or model_capabilities(protocol(upstream).family, request.model)
        return request_from_ir(upstream, request, caps)[0]
    except MALFORMED as e:  # a value of the wrong type that reading let through
        raise TranslationError(f"malformed {client} request: {type(e).__name__}: {e}") from None


def request_from_ir(upstream: str, request: Request, caps: Capabilities) -> tuple[dict, list[str]]:
    """The body of `request` for an upstream of protocol `upstream` whose model has `caps`, and what was changed
    to fit the model, in words (`Translator.fitted_request`). Raises a MALFORMED error for a value of the wrong
    type that reading let through."""
    return get(upstream).fitted_request(request, caps)


def translate_answer(body: dict, upstream: str, client: str, request: Request, ids: ToolIds | None = None) -> dict:
    """An upstream's non-stream answer rewritten for the client (whose request was `request`)."""
    try:
        return get(client).answer_from_ir(get(upstream).answer(body, ids), request)
    except MALFORMED as e:
        raise TranslationError(f"malformed {upstream} answer: {type(e).__name__}: {e}") from None


def translate_error(status: int, body: bytes, client: str) -> tuple[int, bytes]:
    """An upstream's error answer (any vendor's shape) as the client's protocol says it: (status, body)."""
    return get(client).error_from_ir(error_from_body(status, body))


def stream_translator(upstream: str, client: str, request: Request, ids: ToolIds | None = None,
                      created: int = 0) -> StreamTranslator:
    """A drop-in Repairer that turns the upstream's stream into the client's, event by event."""
    return StreamTranslator(get(upstream).decoder(ids), get(client).encoder(request, created))


def stream_folder(upstream: str, client: str, request: Request, ids: ToolIds | None = None) -> StreamFolder:
    """A drop-in Aggregator that folds the upstream's stream into the client's non-stream answer."""
    return StreamFolder(get(upstream).decoder(ids), get(client), request)


__all__ = [
    "Decoder",
    "Encoder",
    "StreamFolder",
    "StreamTranslator",
    "TranslationError",
    "across_vendors",
    "Translator",
    "get",
    "names",
    "request_from_ir",
    "request_to_ir",
    "stream_folder",
    "stream_translator",
    "translate_answer",
    "translate_error",
    "translate_request",
]

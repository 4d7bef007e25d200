"""Gemini CLI on Code Assist: Gemini requests in an envelope at `cloudcode-pa.googleapis.com/v1internal:<method>`,
the client's own Google login as `Authorization: Bearer ya29.…`.

- The envelope: a request is `{model, project, user_prompt_id, request: <the Gemini request>}` (the model in the
  body, not the path); an answer, a stream's event and a whole one, is `{"response": <the Gemini answer>,
  "traceId", …}`; an error is Google's `{"error": …}` (a stream's, a JSON array of them), never wrapped. The
  engine reads and repairs the Gemini request and answer inside: a request is opened into the plain Gemini call
  it stands for (`opened`), put back in its envelope as it came (`enveloped`: its other members, their order,
  kept), and an answer's events are opened as they come and put back as they came, what Rotator writes itself
  put in an envelope (`CodeAssistAnswers`, `enveloped_answer`).
- A used-up quota answers 429 `RESOURCE_EXHAUSTED` with `ErrorInfo{reason: QUOTA_EXHAUSTED, domain:
  cloudcode-pa.googleapis.com, metadata: {quotaResetTimeStamp, quotaResetDelay, model}}` and a `RetryInfo` of the
  whole wait: the model's quota, spent until then. Gemini CLI sleeps the whole `retryDelay` of such an answer
  (hours) when its message says "exhausted your capacity": the answer its client gets has that delay bounded
  (`bounded_delay`), so the CLI ends the turn with the vendor's message instead.
- Another target of a `from: code_assist` route gets the plain Gemini request, without the `session_id` only
  Code Assist reads.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from protocols.envelope import Envelope
from protocols.events import Event
from protocols.sse import SSEParser, dumps, format_event, load_object, loads
from protocols.vendor_errors import ErrorAnswer, ErrorKind, Quota, VendorError
from protocols.windows import Window, WindowAnswer, WindowStatus, epoch

# The generation methods (served); `countTokens` is forwarded on the login as it came.
GENERATION = re.compile(r"/v1internal:(generateContent|streamGenerateContent)")
COUNT_TOKENS = re.compile(r"/v1internal:countTokens")
INTERNAL = "/v1internal:"
PROTOCOL = "gemini"  # the protocol inside the envelope
PLAIN_PATH = "/v1beta/models/{model}:{method}"  # the plain Gemini call an envelope stands for
_PLAIN_METHOD = re.compile(r":(generateContent|streamGenerateContent)$")
_PLAIN_MODEL = re.compile(r"/models/([^/:]+):")
REQUEST, RESPONSE, MODEL = "request", "response", "model"
CODE_ASSIST_ONLY = frozenset({"session_id"})  # inside `request`: what only Code Assist reads
QUOTA_EXHAUSTED = "QUOTA_EXHAUSTED"
DOMAIN = "cloudcode-pa.googleapis.com"
MAX_WINDOW = 31 * 86400.0
MAX_CLIENT_DELAY = 1.0  # seconds: the longest retry delay of an exhaustion answer its client is given
# Gemini CLI sleeps out the delay of an answer whose message says this, whatever its reason (googleQuotaErrors.ts);
# one longer than LONG_DELAY (what it retries a rate limit after at most) is bounded like a spent quota's.
CAPACITY = b"exhausted your capacity"
LONG_DELAY = 300.0
CRLF, LF = b"\r\n", b"\n"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


def claims(headers: Mapping[str, str]) -> bool:
    """Whether a request carries a login: a bearer token (Gemini CLI sends its Google access token so)."""
    return (headers.get("authorization") or "").strip().lower().startswith("bearer ")


# -- the request's envelope -------------------------------------------------------------------------------------


def sample_path(path: str) -> str:
    """The plain Gemini path of a generation method, for any model (what tells its protocol)."""
    m = GENERATION.fullmatch(path)
    return PLAIN_PATH.format(model="m", method=m.group(1)) if m else path


def opened(path: str, body: dict) -> tuple[str, dict] | None:
    """(the plain Gemini path, the Gemini request) of an envelope; None when it is none (no model or request)."""
    m = GENERATION.fullmatch(path)
    inner, model = body.get(REQUEST), body.get(MODEL)
    if m is None or not isinstance(inner, dict) or not isinstance(model, str) or not model:
        return None
    return PLAIN_PATH.format(model=model, method=m.group(1)), inner


def envelope_path(client_path: str, plain_path: str, body: dict) -> str:
    """The Code Assist path of a plain Gemini call (its method kept: a forced stream's is the stream's)."""
    m = _PLAIN_METHOD.search(plain_path)
    return INTERNAL + (m.group(1) if m else "generateContent")


def enveloped(envelope: dict | None, plain_path: str, content: bytes) -> bytes:
    """`content` (the JSON of a Gemini request on `plain_path`) in the client's `envelope`, its other members and
    their order as they came (the model the one the path asks now); in a new one without."""
    m = _PLAIN_MODEL.search(plain_path)
    model = unquote(m.group(1), errors="replace") if m else ""
    marker = "\x00rotator-request\x00"
    outer = {k: (marker if k == REQUEST else model if k == MODEL else v) for k, v in (envelope or {MODEL: ""}).items()}
    outer.setdefault(REQUEST, marker)
    text = dumps(outer)
    quoted = json.dumps(marker).encode()
    if text.count(quoted) != 1:  # (the marker written elsewhere by a client: build it whole)
        return dumps({**outer, REQUEST: loads(content)})
    return text.replace(quoted, content)


def foreign_body(body: dict) -> dict:
    """The Gemini request as the public API takes it: without what only Code Assist reads."""
    if not CODE_ASSIST_ONLY & body.keys():
        return body
    return {k: v for k, v in body.items() if k not in CODE_ASSIST_ONLY}


# -- the answer's envelope --------------------------------------------------------------------------------------


class CodeAssistAnswers:
    """One request's answer events, opened for the engine and put back for the client: an opened event's data
    and bytes are the plain Gemini chunk's, and the bytes its envelope came in are kept until the client is sent
    that chunk unchanged (then it gets them as they came); what else the client is sent, Rotator's own events and
    another target's, is put in an envelope."""

    KEPT = 256  # events opened and not sent yet (the seam of a continuation drops some)

    def __init__(self) -> None:
        self._came: OrderedDict[bytes, list[bytes]] = OrderedDict()  # the plain chunk's bytes -> the envelopes

    def parser(self) -> SSEParser:
        return OpenedParser(self.opened)

    def opened(self, event: Event) -> Event:
        """An answer's event as the Gemini machinery reads it: the `response` inside its envelope; any other
        event (an error, a comment) as it is."""
        data = event.data
        if data is None or RESPONSE not in data:
            return event
        obj = load_object(data)
        inner = obj.get(RESPONSE) if obj is not None else None
        if not isinstance(inner, dict):
            return event
        plain = dumps(inner)
        raw = format_event(plain, event.event, CRLF if event.raw.endswith(CRLF + CRLF) else LF)
        self._came.setdefault(raw, []).append(event.raw)
        while len(self._came) > self.KEPT:
            self._came.popitem(last=False)
        return Event(raw, plain.decode(), event.event, event.id)

    def stream(self, data: bytes) -> bytes:
        """Stream bytes for the client: each event put back in the envelope it came in, or in a new one (a plain
        Gemini chunk); errors and comments as they are."""
        parser = SSEParser()
        events = parser.feed(data) + parser.close()
        if not events or len(data) != sum(len(e.raw) for e in events):  # (not whole events: as they are)
            return data
        out = []
        for e in events:
            came = self._put_back(e.raw)
            obj = load_object(e.data) if came is None and e.data is not None else None
            if came is not None:
                out.append(came)
            elif obj is None or _wrapped(obj):
                out.append(e.raw)
            else:
                out.append(format_event(dumps({RESPONSE: obj}), e.event, CRLF if e.raw.endswith(CRLF + CRLF) else LF))
        return b"".join(out)


    def _put_back(self, raw: bytes) -> bytes | None:
        """The bytes the envelope of the chunk `raw` came in (the earliest of identical chunks); None: none came."""
        came = self._came.get(raw)
        if not came:
            return None
        first = came.pop(0)
        if not came:
            del self._came[raw]
        return first


class OpenedParser(SSEParser):
    """An SSE parser whose events are opened (`CodeAssistAnswers.opened`)."""

    def __init__(self, opened: Callable[[Event], Event]) -> None:
        super().__init__()
        self._opened = opened

    def feed(self, data: bytes) -> list[Event]:
        return [self._opened(e) for e in super().feed(data)]

    def close(self) -> list[Event]:
        return [self._opened(e) for e in super().close()]


def _wrapped(obj: Any) -> bool:
    """Whether a JSON value goes to the client as it is: an envelope already, or an error (never wrapped)."""
    return not isinstance(obj, dict) or RESPONSE in obj or "error" in obj


def enveloped_answer(data: bytes) -> bytes:
    """A whole answer for the client: a plain Gemini answer put in an envelope; anything else as it is."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return data
    return data if _wrapped(obj) else dumps({RESPONSE: obj})


def opened_answer(data: bytes) -> bytes:
    """A whole answer's Gemini answer (for its usage); anything else as it is."""
    obj = load_object(data.decode("utf-8", "replace")) if data[:1] == b"{" else None
    inner = obj.get(RESPONSE) if obj is not None else None
    return dumps(inner) if isinstance(inner, dict) else data


# -- a used-up quota --------------------------------------------------------------------------------------------


def _quota_info(answer_error: dict | None) -> dict | None:
    """The ErrorInfo of a spent Code Assist quota, if the error is one."""
    details = answer_error.get("details") if isinstance(answer_error, dict) else None
    for d in details if isinstance(details, list) else ():
        if (isinstance(d, dict) and str(d.get("@type", "")).endswith("ErrorInfo")
                and d.get("reason") == QUOTA_EXHAUSTED):
            return d
    return None


def _metadata(info: dict) -> dict[str, str]:
    """The ErrorInfo's metadata (its text values)."""
    meta = info.get("metadata")
    return {k: v for k, v in meta.items() if isinstance(v, str)} if isinstance(meta, dict) else {}


def _reset(info: dict, now: float, delay: float | None) -> float | None:
    """When the quota refills: its reset time, else its reset delay, else the RetryInfo's delay, from now."""
    meta = _metadata(info)
    at = epoch(meta.get("quotaResetTimeStamp"))
    if at is None and (m := _DURATION.match(meta.get("quotaResetDelay", ""))):
        at = now + float(m.group(1))
    if at is None and delay is not None:
        at = now + delay
    return at if at is not None and now <= at <= now + MAX_WINDOW else None


def exhausted(answer: ErrorAnswer, error: VendorError) -> VendorError:
    """A 429 `QUOTA_EXHAUSTED`: the model's quota is spent until its reset."""
    info = _quota_info(answer.error) if answer.status == 429 else None
    if info is None:
        return error
    reset = _reset(info, answer.now, error.delay)
    window = None if reset is None else reset - answer.now
    model = _metadata(info).get("model")
    what = f"the plan's {model} quota is used up" if model else "the plan's quota is used up"
    return dataclasses.replace(error, kind=ErrorKind.QUOTA,
                               quota=Quota(window=window, per_model=True, id=QUOTA_EXHAUSTED, what=what))


def windows(answer: WindowAnswer, read: tuple[Window, ...]) -> tuple[Window, ...]:
    """The quota a 429 `QUOTA_EXHAUSTED` says is spent: the model's window, exhausted until its reset."""
    if answer.status != 429 or b"QUOTA_EXHAUSTED" not in answer.body:
        return read
    try:
        body = json.loads(answer.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return read
    body = body[0] if isinstance(body, list) and body else body
    info = _quota_info(body.get("error") if isinstance(body, dict) else None)
    if info is None:
        return read
    model = _metadata(info).get("model") or None
    reset = _reset(info, answer.now, None)
    status = WindowStatus.EXHAUSTED if reset is not None else None
    name = f"{model} quota" if model else "quota"
    return (*read, Window(name, used=1.0, resets_at=reset, status=status, model=model))


def bounded_delay(status: int, body: bytes) -> bytes:
    """A spent quota's error answer as its client gets it: a `RetryInfo.retryDelay` longer than MAX_CLIENT_DELAY
    bounded to it (a capacity answer's longer than LONG_DELAY), the rest as it came; any other answer as it is."""
    if status != 429 or b"retryDelay" not in body:
        return body
    if QUOTA_EXHAUSTED.encode() in body:
        longest = MAX_CLIENT_DELAY
    elif CAPACITY in body:
        longest = LONG_DELAY
    else:
        return body
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return body
    changed = False
    for item in parsed if isinstance(parsed, list) else [parsed]:
        error = item.get("error") if isinstance(item, dict) else None
        details = error.get("details") if isinstance(error, dict) else None
        for d in details if isinstance(details, list) else ():
            delay = d.get("retryDelay") if isinstance(d, dict) else None
            m = _DURATION.match(delay.strip()) if isinstance(delay, str) else None
            if m is not None and float(m.group(1)) > longest:
                d["retryDelay"] = f"{MAX_CLIENT_DELAY:g}s"
                changed = True
    return dumps(parsed) if changed else body


ENVELOPE = Envelope(sample_path, opened, envelope_path, enveloped, CodeAssistAnswers, enveloped_answer, opened_answer)

"""What a vendor's error answer means, as one typed result (`VendorError`) the engine's policy decides on
(rewrite/policy/retry.py): its kind, its message, the request parameters it refuses, the delay it names and the
quota it says is spent.

Each vendor family carries its `ErrorReader` (protocols/families/<name>/errors.py). A reader reads what every HTTP
answer may say (`retry-after-ms`, `retry-after`), then runs its dialects in order: each is a pure function that
refines what was read before it (a delay only where none was read yet). A vendor's variant of a protocol (a
subscription login's quota errors, a compatible vendor's own shape) is one dialect more: `reader.with_dialects(...)`.

Pure functions of (status, headers, body, now). Every source is vendor-written: a value that does not parse, is
negative or is not finite is ignored (the next source is read), never an error.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from protocols.refused_params import PARAM, camel

MAX_HINT = 86400.0  # a day: no vendor window is longer, and a typo must not rest a key for years
REFUSAL_STATUS = 400  # the status of an answer that refuses a request parameter


class ErrorKind(StrEnum):
    """What an error answer says happened (a dialect may say more than its status does)."""

    BAD_KEY = "bad_key"  # the key or its account was refused (401, 403)
    QUOTA = "quota"  # a quota is spent: retrying soon will not clear it (`VendorError.quota` says until when)
    RATE_LIMITED = "rate_limited"  # a short-term limit (429)
    OVERLOADED = "overloaded"  # the vendor is busy or down (503, 529)
    TRANSIENT = "transient"  # another error another try may not get (408, 409, 500, 502, 504)
    REFUSED = "refused"  # the request carries parameters its model does not take (`VendorError.refused`)
    FOREIGN = "foreign"  # the request carries state another account made (an encrypted reasoning item)
    REQUEST = "request"  # the request's own fault, the same on every key (400, 404, 413, 422, ...)


_BY_STATUS = {401: ErrorKind.BAD_KEY, 403: ErrorKind.BAD_KEY, 429: ErrorKind.RATE_LIMITED,
              503: ErrorKind.OVERLOADED, 529: ErrorKind.OVERLOADED,
              **dict.fromkeys((408, 409, 500, 502, 504), ErrorKind.TRANSIENT)}


def kind_of(status: int) -> ErrorKind:
    """What a status alone says."""
    return _BY_STATUS.get(status, ErrorKind.REQUEST)


@dataclass(frozen=True, slots=True)
class Quota:
    """A spent quota: when it refills, and what it covers."""

    window: float | None = None  # seconds until it refills; None: the answer names no window
    per_model: bool = False  # the model's quota: the key still serves other models
    id: str = ""  # the vendor's name for it (`insufficient_quota`, a Gemini quota id, ...)
    what: str = "out of quota"  # in words, for the pool's log line and status


@dataclass(frozen=True, slots=True)
class VendorError:
    """What one error answer means."""

    status: int
    kind: ErrorKind
    message: str = ""  # the vendor's message (the body's text when it is not a JSON error)
    param: str = ""  # the parameter the vendor's error object names, if any
    refused: tuple[str, ...] = ()  # the request parameters its model does not take (dotted paths of keys)
    delay: float | None = None  # seconds the vendor says to wait before the next try; None: none named
    quota: Quota | None = None  # the quota it says is spent (kind QUOTA)

    @property
    def text(self) -> str:
        """The message and the parameter named, for words the policy looks for."""
        return f"{self.message} {self.param}" if self.param else self.message


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """An error answer as a dialect reads it."""

    status: int
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    error: dict | None  # the body's `error` object (a JSON array's first element's, as Google's streams send)
    now: float  # seconds since the epoch


Dialect = Callable[[ErrorAnswer, VendorError], VendorError]


@dataclass(frozen=True)
class ErrorReader:
    """A protocol's reader of error answers: the HTTP hints, then `dialects` in order.

    `essential`: parameters without which a request means something else or nothing: never reported refused (their
    refusal goes to the client). `holders`: objects a refused parameter is shown without (Gemini's
    `generationConfig`)."""

    dialects: tuple[Dialect, ...] = ()
    essential: frozenset[str] = frozenset()
    holders: tuple[str, ...] = ()

    def read(self, status: int, headers: Iterable[tuple[str, str]], body: bytes, now: float) -> VendorError:
        answer = ErrorAnswer(status, lowered(headers), body, error_object(body), now)
        result = VendorError(status, kind_of(status), *message_of(answer), delay=http_delay(answer.headers, now))
        for dialect in self.dialects:
            result = dialect(answer, result)
        if result.refused:
            essential = {camel(p) for p in self.essential}
            refused = tuple(p for p in dict.fromkeys(result.refused)
                            if PARAM.match(p) and camel(p.split(".", 1)[0]) not in essential)
            kind = ErrorKind.REFUSED if refused and result.kind is ErrorKind.REQUEST else result.kind
            result = dataclasses.replace(result, refused=refused, kind=kind)
        return result

    def with_dialects(self, *dialects: Dialect) -> ErrorReader:
        """This reader with `dialects` read after its own (a vendor's variant of the protocol)."""
        return dataclasses.replace(self, dialects=(*self.dialects, *dialects))

    def shown(self, param: str) -> str:
        """A parameter as the flow and the log name it."""
        for holder in self.holders:
            param = param.removeprefix(holder + ".")
        return param


GENERIC = ErrorReader()  # the HTTP hints alone, for a protocol that names no dialect


def lowered(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    h = {}
    for name, value in headers:
        if isinstance(name, str) and isinstance(value, str):
            h[name.lower()] = value
    return h


def error_object(body: bytes) -> dict | None:
    """The body's `error` object: `{"error": {...}}`, or the first element of a JSON array of such."""
    if not body:
        return None
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if isinstance(doc, list) and doc:
        doc = doc[0]
    error = doc.get("error") if isinstance(doc, dict) else None
    return error if isinstance(error, dict) else None


def message_of(answer: ErrorAnswer) -> tuple[str, str]:
    """(message, param) of an answer: its error object's, else the text of the body."""
    error = answer.error
    if error is None:
        try:
            doc = json.loads(answer.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return answer.body.decode("utf-8", "replace"), ""
        named = doc.get("error") if isinstance(doc, dict) else None
        return str(named or ""), ""
    message, param = error.get("message"), error.get("param")
    return (message if isinstance(message, str) else "" if message is None else str(message),
            param if isinstance(param, str) else "")


# -- delays --------------------------------------------------------------------------------------------------------


def finite(value: float) -> float | None:
    """A delay as read: None if negative or not finite, at most MAX_HINT."""
    return min(value, MAX_HINT) if math.isfinite(value) and value >= 0 else None


def seconds(text: str) -> float | None:
    """A delay written as a number of seconds (`7`, `1.5`)."""
    try:
        return finite(float(text.strip()))
    except (ValueError, AttributeError):
        return None


def milliseconds(text: str) -> float | None:
    """A delay written as a number of milliseconds (`1500`), in seconds."""
    try:
        return finite(float(text.strip()) / 1000)
    except (ValueError, AttributeError):
        return None


def http_date(text: str, now: float) -> float | None:
    """Seconds from `now` (epoch) until an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`)."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return finite(max(0.0, when.timestamp() - now))


def rfc3339(text: str, now: float) -> float | None:
    """Seconds from `now` until an RFC 3339 time (`2025-01-01T12:00:30Z`)."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if when.tzinfo is None:
        return None
    return finite(max(0.0, when.timestamp() - now))


def http_delay(h: Mapping[str, str], now: float) -> float | None:
    """What any HTTP answer may name: `retry-after-ms`, then `retry-after` (seconds or an HTTP date)."""
    if (ms := milliseconds(h.get("retry-after-ms", ""))) is not None:
        return ms
    if "retry-after" in h:
        v = h["retry-after"]
        if (s := seconds(v)) is not None or (s := http_date(v, now)) is not None:
            return s
    return None


def spent_reset(resets: dict[str, float], remaining: dict[str, str]) -> float | None:
    """Of a vendor's per-limit reset headers, the reset of the limit that ran out (remaining 0); when none says
    so, the latest reset."""
    if not resets:
        return None
    spent = [v for name, v in resets.items() if remaining.get(name, "").strip() == "0"]
    return max(spent or resets.values())


def reset_headers(prefix: str, suffix: str, remaining_prefix: str, remaining_suffix: str,
                  parse: Callable[[str, float], float | None]) -> Dialect:
    """A dialect reading per-limit reset headers (`<prefix><limit><suffix>`, beside
    `<remaining_prefix><limit><remaining_suffix>`) when nothing before it named a delay."""
    def read(answer: ErrorAnswer, error: VendorError) -> VendorError:
        if error.delay is not None:
            return error
        resets: dict[str, float] = {}
        remaining: dict[str, str] = {}
        for name, value in answer.headers.items():
            if limit := _between(name, prefix, suffix):
                if (delay := parse(value, answer.now)) is not None:
                    resets[limit] = delay
            elif limit := _between(name, remaining_prefix, remaining_suffix):
                remaining[limit] = value
        delay = spent_reset(resets, remaining)
        return error if delay is None else dataclasses.replace(error, delay=delay)
    return read


def _between(name: str, prefix: str, suffix: str) -> str:
    if name.startswith(prefix) and name.endswith(suffix) and len(name) > len(prefix) + len(suffix):
        return name[len(prefix):len(name) - len(suffix)]
    return ""


def quota_spent(status: int, marks: Iterable[bytes]) -> Dialect:
    """A dialect: an answer of `status` whose body carries one of `marks` says a quota of the whole key is spent
    (the window is the delay it names, if any)."""
    marks = tuple(marks)

    def read(answer: ErrorAnswer, error: VendorError) -> VendorError:
        if answer.status != status:
            return error
        mark = next((m for m in marks if m in answer.body), None)
        if mark is None:
            return error
        return dataclasses.replace(error, kind=ErrorKind.QUOTA, quota=Quota(id=mark.decode()))
    return read


def foreign_state(status: int, marks: Iterable[bytes]) -> Dialect:
    """A dialect: an answer of `status` whose body carries one of `marks` says the request carries state only
    another account accepts (what a conversation moved to this key brought from the key that made it)."""
    marks = tuple(marks)

    def read(answer: ErrorAnswer, error: VendorError) -> VendorError:
        if answer.status != status or not any(m in answer.body for m in marks):
            return error
        return dataclasses.replace(error, kind=ErrorKind.FOREIGN)
    return read


def refused_by(names: Callable[[dict], list[str]]) -> Dialect:
    """A dialect: the parameters a 400's error object names as ones the model does not take (`names` reads them)."""
    def read(answer: ErrorAnswer, error: VendorError) -> VendorError:
        if answer.status != REFUSAL_STATUS or answer.error is None:
            return error
        refused = names(answer.error)
        return dataclasses.replace(error, refused=tuple(refused)) if refused else error
    return read


def error_message(error: dict) -> str:
    message = error.get("message")
    return message.strip() if isinstance(message, str) else ""


def matches(patterns: Iterable[re.Pattern[str]], text: str) -> list[str]:
    """The first group of the first of `patterns` that matches `text` (none: an empty list)."""
    return [m.group(1) for pattern in patterns if (m := pattern.match(text))][:1]

"""What an AWS Signature Version 4 on a request says, read from its headers (pure): the access key id and the
credential scope (date, region, service) of `Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/
bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=…`, the headers it covers, and when it
was made (`x-amz-date`, `20261125T120000Z`). A signature covers the method, the path as sent, the query, the signed
headers and the body's SHA-256; AWS refuses it about five minutes after its time (no nonce: the identical request
sent again within that window is accepted, and billed again)."""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass

SCHEME = "AWS4-HMAC-SHA256"
DATE_HEADER = "x-amz-date"
LIFETIME = 300.0  # seconds a signature is accepted after its time (AWS's "within five minutes")
_FIELDS = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]*)")
_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$")


@dataclass(frozen=True, slots=True)
class Signature:
    access_key_id: str
    date: str  # the scope's day, YYYYMMDD
    region: str
    service: str
    signed_headers: tuple[str, ...]  # lower case, as the client listed them
    signed_at: float | None  # epoch seconds of its x-amz-date; None when it has none that parses

    def expires(self) -> float | None:
        """When AWS stops accepting it (epoch seconds); None when its time is not known."""
        return None if self.signed_at is None else self.signed_at + LIFETIME


def amz_date(value: str) -> float | None:
    """Epoch seconds of an `x-amz-date` value; None for one that is not a SigV4 timestamp."""
    m = _DATE.match(value.strip())
    if m is None:
        return None
    try:
        return float(calendar.timegm(time.struct_time((*map(int, m.groups()), 0, 0, 0))))
    except (ValueError, OverflowError):
        return None


def signature(headers: list[tuple[str, str]]) -> Signature | None:
    """The SigV4 signature a request's headers carry; None for none (unsigned, or a bearer token)."""
    auth = next((v for n, v in headers if n.lower() == "authorization"), "").strip()
    if not auth.startswith(SCHEME + " "):
        return None
    fields = dict(_FIELDS.findall(auth))
    scope = fields.get("Credential", "").split("/")
    if len(scope) != 5 or not all(scope[:4]) or "SignedHeaders" not in fields:
        return None
    date = next((v for n, v in headers if n.lower() == DATE_HEADER), "")
    signed = tuple(h for h in fields["SignedHeaders"].lower().split(";") if h)
    return Signature(scope[0], scope[1], scope[2], scope[3], signed, amz_date(date))

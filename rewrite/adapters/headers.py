"""`headers: {set: {anthropic-beta: "..."}, remove: [x-stainless-os]}`: set and remove request headers.

Names match case-insensitively. The credential is the key pool's business (it is set after the adapters run),
and the framing headers are the HTTP client's, so neither may be named here.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from rewrite.adapters.registry import Adapter, UpstreamRequest, register

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110 token)
_VALUE = re.compile(r"^[\x20-\x7e\t]*$")
RESERVED = frozenset(
    {"authorization", "x-api-key", "x-goog-api-key", "api-key", "proxy-authorization",
     "host", "content-length", "transfer-encoding", "connection", "content-encoding"}
)


def _name(name: str) -> str:
    if not _TOKEN.match(name):
        raise ValueError(f"{name[:40]!r} is not a header name")
    if name.lower() in RESERVED:
        raise ValueError(f"{name} is set by Rotator (credentials by the key pool, framing by the HTTP client)")
    return name.lower()


class HeaderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    set: dict[str, str] = {}
    remove: list[str] = []

    @field_validator("set")
    @classmethod
    def _set(cls, v: dict[str, str]) -> dict[str, str]:
        for value in v.values():
            if not _VALUE.match(value):
                raise ValueError("a header value must be printable ASCII")
        return {_name(n): value for n, value in v.items()}

    @field_validator("remove")
    @classmethod
    def _remove(cls, v: list[str]) -> list[str]:
        return [_name(n) for n in v]

    @model_validator(mode="after")
    def _something(self) -> HeaderOptions:
        if not self.set and not self.remove:
            raise ValueError("give set, remove or both")
        return self


@register
class Headers(Adapter):
    name = "headers"
    Options = HeaderOptions

    def __init__(self, options: HeaderOptions) -> None:
        super().__init__(options)
        self.gone = frozenset(options.remove) | frozenset(options.set)
        self.added = list(options.set.items())

    def request(self, req: UpstreamRequest) -> None:
        req.headers = [(n, v) for n, v in req.headers if n.lower() not in self.gone] + self.added

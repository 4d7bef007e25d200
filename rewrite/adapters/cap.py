"""`cap: {max_tokens: 32000}`: lower a number above its maximum to the maximum."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from rewrite.adapters import paths
from rewrite.adapters.numbers import Finite, bound
from rewrite.adapters.registry import Adapter, UpstreamRequest, register


@register
class Cap(Adapter):
    name = "cap"
    Options = Annotated[dict[str, Finite], Field(min_length=1), AfterValidator(paths.dotted_keys)]

    def __init__(self, options: dict[str, float]) -> None:
        super().__init__(options)
        self.fields = [(paths.split(k), v) for k, v in options.items()]

    def request(self, req: UpstreamRequest) -> None:
        for parts, high in self.fields:
            bound(req.body, parts, None, high)

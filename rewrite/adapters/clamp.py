"""`clamp: {temperature: {min: 0, max: 1}}`: bring a number into a range."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from rewrite.adapters import paths
from rewrite.adapters.numbers import Finite, bound
from rewrite.adapters.registry import Adapter, UpstreamRequest, register


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: Finite | None = None
    max: Finite | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self


@register
class Clamp(Adapter):
    name = "clamp"
    Options = Annotated[dict[str, Range], Field(min_length=1), AfterValidator(paths.dotted_keys)]

    def __init__(self, options: dict[str, Range]) -> None:
        super().__init__(options)
        self.fields = [(paths.split(k), r.min, r.max) for k, r in options.items()]

    def request(self, req: UpstreamRequest) -> None:
        for parts, low, high in self.fields:
            bound(req.body, parts, low, high)

"""`default: {max_tokens: 8192}`: set each field the client left out (or sent as null)."""

from __future__ import annotations

import copy
from typing import Annotated

from pydantic import AfterValidator, Field, JsonValue

from rewrite.adapters import paths
from rewrite.adapters.registry import Adapter, UpstreamRequest, register


@register
class Default(Adapter):
    name = "default"
    Options = Annotated[dict[str, JsonValue], Field(min_length=1), AfterValidator(paths.dotted_keys)]

    def __init__(self, options: dict[str, JsonValue]) -> None:
        super().__init__(options)
        self.fields = [(paths.split(k), v) for k, v in options.items()]

    def request(self, req: UpstreamRequest) -> None:
        for parts, value in self.fields:
            holder = paths.parent(req.body, parts, create=True, replace=False)
            if holder is not None and holder.get(parts[-1]) is None:
                holder[parts[-1]] = copy.deepcopy(value)

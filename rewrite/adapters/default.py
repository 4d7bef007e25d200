"""`default: {max_tokens: 8192}`: set each field the client left out (or sent as null)."""

from __future__ import annotations

import copy
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from rewrite.adapters import Adapter, UpstreamRequest, paths, register


@register
class Default(Adapter):
    name = "default"
    Options = Annotated[dict[str, Any], Field(min_length=1), AfterValidator(paths.dotted_keys)]

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.fields = [(paths.split(k), v) for k, v in options.items()]

    def request(self, req: UpstreamRequest) -> None:
        for parts, value in self.fields:
            if paths.get(req.body, parts) is None:
                paths.parent(req.body, parts, create=True)[parts[-1]] = copy.deepcopy(value)

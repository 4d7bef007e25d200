"""`force: {temperature: 1.0, thinking.type: enabled}`: set each field, whatever the client sent."""

from __future__ import annotations

import copy
from typing import Annotated, cast

from pydantic import AfterValidator, Field, JsonValue

from rewrite.adapters import paths
from rewrite.adapters.registry import Adapter, UpstreamRequest, register


@register
class Force(Adapter):
    name = "force"
    Options = Annotated[dict[str, JsonValue], Field(min_length=1), AfterValidator(paths.dotted_keys)]

    def __init__(self, options: dict[str, JsonValue]) -> None:
        super().__init__(options)
        self.fields = [(paths.split(k), v) for k, v in options.items()]

    def request(self, req: UpstreamRequest) -> None:
        for parts, value in self.fields:
            # a copy, so one request's later adapters cannot change the value the next request gets
            # never None with create (and replace): every mapping on the way is made
            holder = cast(dict, paths.parent(req.body, parts, create=True))
            holder[parts[-1]] = copy.deepcopy(value)

"""The config's adapter lists: each entry is `{name: options}`, or a bare name for an adapter without options.

`AdapterEntry` has one optional field per registered adapter, typed by the adapter's `Options`, so a bad option
is reported at its own place (`adapters.0.cap.max_tokens: Input should be a valid number`).
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, create_model, model_validator
from pydantic_core import PydanticCustomError

from rewrite.adapters.registry import ADAPTERS, Adapter

_fields: dict[str, Any] = {name: (cls.Options, None) for name, cls in ADAPTERS.items()}
_Fields = create_model("AdapterFields", __config__=ConfigDict(extra="forbid"), **_fields)


class AdapterEntry(_Fields):  # type: ignore[misc, valid-type]  # (a base made at run time, one field per adapter)
    @model_validator(mode="before")
    @classmethod
    def _one_adapter(cls, value):
        if isinstance(value, str):
            value = {value: None}
        if not isinstance(value, dict) or len(value) != 1:
            raise PydanticCustomError("adapter", "an adapter is a mapping of one adapter name to its options, "
                                                  "e.g. cap: {max_tokens: 32000}")
        name, options = next(iter(value.items()))
        if name not in ADAPTERS:
            raise PydanticCustomError("adapter", "unknown adapter '{name}'; known: {known}",
                                      {"name": str(name)[:40], "known": ", ".join(ADAPTERS)})
        return {name: {} if options is None else options}

    @property
    def name(self) -> str:
        return next(iter(self.model_fields_set))

    def build(self) -> Adapter:
        return ADAPTERS[self.name](getattr(self, self.name))

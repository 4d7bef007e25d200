"""The official SDKs' pydantic types held to an object Rotator writes: it must validate (every field the type
requires is there) and carry no key the type does not declare, at any depth."""

from __future__ import annotations

import pydantic


def exactly(sdk_type: object, obj: dict) -> object:
    """`obj` validated as `sdk_type` (a model class or a union); fails the test on any undeclared key."""
    value = pydantic.TypeAdapter(sdk_type).validate_python(obj)
    assert undeclared(value) == [], f"keys the {sdk_type} type does not declare"
    return value


def undeclared(value: object, path: str = "") -> list[str]:
    """Where in a validated value a model kept keys its type does not declare (pydantic's `model_extra`)."""
    if isinstance(value, pydantic.BaseModel):
        found = [f"{path}.{key}" for key in value.model_extra or {}]
        for name in type(value).model_fields:
            found += undeclared(getattr(value, name), f"{path}.{name}")
        return found
    if isinstance(value, (list, tuple)):
        return [where for i, item in enumerate(value) for where in undeclared(item, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [where for key, item in value.items() for where in undeclared(item, f"{path}.{key}")]
    return []

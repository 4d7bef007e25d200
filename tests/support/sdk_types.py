"""What the official SDKs' own types say of a body, strictly: well-formed, and no key the type does not declare.

pydantic validates the SDKs' request TypedDicts but ignores keys they lack, and the SDKs' response models keep
such keys in `model_extra`; the checks here report both as paths (`messages[2].name`).
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Union

import pydantic
import typing_extensions as te

_LISTS = (list, tuple, Iterable, Sequence, typing.Iterable, typing.Sequence, list)


def _unwrap(tp: Any) -> Any:
    while te.get_origin(tp) in (te.Required, te.NotRequired, te.Annotated, te.ReadOnly):
        tp = te.get_args(tp)[0]
    return tp


def undeclared_keys(value: Any, tp: Any, path: str = "") -> list[str] | None:
    """The paths of keys in `value` that `tp` (a TypedDict tree) does not declare; None when `value` does not fit
    `tp` at all (which is how a member of a union is told from the others)."""
    tp = _unwrap(tp)
    origin = te.get_origin(tp)
    if tp is Any or tp is object:
        return []
    if origin is Literal:
        return [] if value in te.get_args(tp) else None
    if origin in (Union, types.UnionType):
        fits = [r for r in (undeclared_keys(value, m, path) for m in te.get_args(tp)) if r is not None]
        return min(fits, key=len) if fits else None
    if te.is_typeddict(tp):
        if not isinstance(value, Mapping):
            return None
        hints = te.get_type_hints(tp, include_extras=True)
        found = [f"{path}.{k}".lstrip(".") for k in value if k not in hints]
        for key, item in value.items():
            if key in hints:
                inner = undeclared_keys(item, hints[key], f"{path}.{key}".lstrip("."))
                if inner is None:
                    return None
                found += inner
        return found
    if origin in _LISTS or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return None
        args = te.get_args(tp) or (Any,)
        found: list[str] = []
        for i, item in enumerate(value):
            inner = undeclared_keys(item, args[0] if origin is not tuple else args[min(i, len(args) - 1)],
                                    f"{path}[{i}]")
            if inner is None:
                return None
            found += inner
        return found
    if origin in (dict, Mapping, dict) or tp is dict:
        if not isinstance(value, Mapping):
            return None
        args = te.get_args(tp)
        found = []
        for key, item in value.items():
            inner = undeclared_keys(item, args[1] if args else Any, f"{path}.{key}".lstrip("."))
            if inner is None:
                return None
            found += inner
        return found
    if isinstance(tp, type) and tp in (str, int, float, bool, type(None)):
        if tp is float:
            return [] if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        return [] if isinstance(value, tp) and not (tp is int and isinstance(value, bool)) else None
    if tp is None:
        return [] if value is None else None
    return []  # a type this walk does not model (files, bytes, ...): pydantic's validation judges it


def _consume(value: Any) -> Any:
    """Walk a validated value: pydantic validates iterables lazily, as they are consumed."""
    if isinstance(value, dict):
        return {k: _consume(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, typing.Iterator)) or type(value).__name__ == "ValidatorIterator":
        return [_consume(v) for v in value]
    return value


@functools.cache
def _adapter(tp: Any) -> pydantic.TypeAdapter:
    return pydantic.TypeAdapter(tp)  # kept: the lazy iterators it returns crash pydantic-core once it is freed


def check_typed_dict(value: dict, tp: Any) -> None:
    """Raise AssertionError unless `value` is a valid `tp` with no undeclared key."""
    _consume(_adapter(tp).validate_python(value))
    extra = undeclared_keys(value, tp)
    assert extra is not None, f"does not fit {tp.__name__}"
    assert not extra, f"keys {tp.__name__} does not declare: {extra}"


def model_extras(obj: Any, path: str = "") -> list[str]:
    """The paths of fields that an SDK's parsed response object holds without declaring them (its model_extra)."""
    found: list[str] = []
    if isinstance(obj, pydantic.BaseModel):
        found += [f"{path}.{k}".lstrip(".") for k in (obj.model_extra or {})]
        for name in type(obj).model_fields:
            found += model_extras(getattr(obj, name), f"{path}.{name}".lstrip("."))
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            found += model_extras(item, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for key, item in obj.items():
            found += model_extras(item, f"{path}.{key}".lstrip("."))
    return found


def exactly(sdk_type: object, obj: dict) -> object:
    """`obj` validated as `sdk_type` (a model class or a union); fails the test on any undeclared key."""
    value = pydantic.TypeAdapter(sdk_type).validate_python(obj)
    assert model_extras(value) == [], f"keys the {sdk_type} type does not declare"
    return value

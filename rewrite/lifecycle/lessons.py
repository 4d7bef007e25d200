"""What a provider's refusals taught of one of its models (kept by the quirks plug-in, rewrite/plugins/quirks.py),
as the spine reads it when it puts a request to that target."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Lessons:
    stream: bool = False  # the model refused a streamed request: non-stream requests go as the client sent them
    stream_options: bool = False  # the provider refused the usage option: streams go without it
    prefill: bool = False  # the model refused a continuation's prefill: continuations are asked in words
    params: frozenset[str] = frozenset()  # request parameters the model refused: left out from then on
    # Per pooled key of the provider: the marks of the state its account refused as another's (left out of its
    # requests from then on).
    foreign: Mapping[str, set[str]] = field(default_factory=dict)


NOTHING_LEARNED = Lessons()

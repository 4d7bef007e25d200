"""One request's context: what every part of its life reads (the flow's job, the client's request, the clock, the
streaming settings, the engine's setting, the engaged plug-ins' hooks and the upstream client; the client's side and
the resume state), handed over as one object instead of each part's constructor taking them one by one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rewrite.config import StreamingConfig
from rewrite.exchange.clock import Clock
from rewrite.exchange.job import Job
from rewrite.exchange.request import ClientRequest
from rewrite.lifecycle.hooks import Hooks
from rewrite.lifecycle.setting import Setting
from rewrite.upstream.client import Sender


@dataclass(slots=True)
class Context:
    job: Job
    req: ClientRequest
    clock: Clock
    streaming: StreamingConfig
    setting: Setting
    hooks: Hooks
    client: Sender
    answers: Any = None  # the client's side (rewrite/exchange/answers.py): what it was sent
    resume: Any = None  # its resume state, when a cut answer may be continued (rewrite/exchange/resume.py)

"""mitmproxy's deprecated `add_log` hook, fed only while an addon has one.

mitmproxy hands every log record, its own and Rotator's (two or three a request), to its deprecated `add_log` hook:
for each, a wake-up of the event loop from another thread's queue and a walk over every addon loaded (about 60),
though neither mitmproxy nor Rotator has that hook. In scripts/bench's agent-sized requests that was 8 % of the
proxy's CPU. This addon puts a filter on that one handler (`mitmproxy.log.LegacyLogEvents`, of this master): a record
goes on to it only while some loaded addon defines `add_log`. The terminal log, mitmweb's event log and every other
reader of the log are untouched.
"""

from __future__ import annotations

import logging

from mitmproxy import ctx, log


class LegacyLogHook:
    def __init__(self) -> None:
        self._filter: _WhileHeard | None = None

    def load(self, loader) -> None:
        master = ctx.master
        self._filter = _WhileHeard(master.addons)
        for handler in _legacy_handlers():
            if getattr(handler, "master", None) is master:
                handler.addFilter(self._filter)

    def done(self) -> None:
        if self._filter is not None:
            for handler in _legacy_handlers():
                handler.removeFilter(self._filter)


def _legacy_handlers() -> list[logging.Handler]:
    """mitmproxy's handlers that feed the `add_log` hook (none in a mitmproxy that no longer has it)."""
    legacy = getattr(log, "LegacyLogEvents", None)
    return [h for h in logging.getLogger().handlers if legacy is not None and isinstance(h, legacy)]


class _WhileHeard(logging.Filter):
    """Lets a record through while an addon of `addons` (an AddonManager) has an `add_log` hook. Whether one has is
    worked out again whenever the addons loaded change: one is added (the chain or the names grow) or removed (the
    AddonManager makes a new chain then, as when a script is reloaded)."""

    def __init__(self, addons) -> None:
        super().__init__()
        self.addons = addons
        self._seen: tuple[int, int, int] = (0, 0, 0)
        self._heard = True

    def filter(self, record: logging.LogRecord) -> bool:
        addons = self.addons
        loaded = (id(addons.chain), len(addons.chain), len(addons.lookup))
        if loaded != self._seen:
            self._seen = loaded
            self._heard = any(callable(getattr(a, "add_log", None)) for a in addons.lookup.values())
        return self._heard

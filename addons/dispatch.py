"""mitmproxy's events and log records, handed only to the addons that handle them.

mitmproxy dispatches an event by walking every addon loaded (36 in the chain under mitmdump with Rotator, 56 with
their children), making for each addon of the chain a context manager, a coroutine and two generators whether any of
them handles the event or not: 75–110 µs an event on a 2-core VM, and a request has about eight (the four of an HTTP
exchange and an `update` after each, which nothing handles under mitmdump). This addon gives its master's
AddonManager a `trigger_event` that works out each event's handlers once for the addons loaded (again whenever one is
registered or removed, as when a script is reloaded) and calls only those, by mitmproxy's own rules: in the chain's
order, each addon's children after it; an error logged as mitmproxy logs it, and the rest of that addon's children
skipped; `AddonHalt` ends the event. A hook's name on a value that is not callable, which mitmproxy reports at every
event of that name, still is: such an event goes through mitmproxy's own dispatch.

mitmproxy also hands every log record to its deprecated `add_log` hook, its own and Rotator's (two or three a
request): for each, a wake-up of the event loop from another thread's queue and a walk over every addon. Its handler
(`mitmproxy.log.LegacyLogEvents`, of this master) gets a filter: a record goes on to it only while some addon loaded
has an `add_log` hook. The terminal log, mitmweb's event log and every other reader of the log are untouched.
"""

from __future__ import annotations

import inspect
import logging
import threading
import types
from collections.abc import Callable
from typing import Any

from mitmproxy import ctx, exceptions, log
from mitmproxy.addonmanager import cut_traceback, traverse

logger = logging.getLogger("mitmproxy.addonmanager")  # (where mitmproxy's own dispatch reports an addon's error)

_CHANGES = ("add", "register", "remove")  # AddonManager's methods that change which addons are loaded
Groups = list[list[Callable[..., Any]]]  # for each addon of the chain that handles an event: its handlers, in order
_UNKNOWN = object()


class HandlersOnly:
    def __init__(self) -> None:
        self._table: Handlers | None = None
        self._filter: _WhileHeard | None = None

    def load(self, loader) -> None:
        master = ctx.master
        self._table = Handlers(master.addons)
        self._filter = _WhileHeard(self._table)
        for handler in _legacy_handlers():
            if getattr(handler, "master", None) is master:
                handler.addFilter(self._filter)

    def done(self) -> None:
        if self._filter is not None:
            for handler in _legacy_handlers():
                handler.removeFilter(self._filter)
        if self._table is not None:
            self._table.uninstall()
        self._table = self._filter = None


class Handlers:
    """Each event's handlers among one AddonManager's addons; installed as its `trigger_event` (and around its
    methods that change the addons loaded, which empty the table) until `uninstall`."""

    def __init__(self, manager) -> None:
        self.manager = manager
        self._thread = threading.get_ident()  # the event loop's, where addons are loaded and events dispatched
        self._groups: dict[str, Groups | None] = {}  # an event's name → its handlers; None: mitmproxy's own dispatch
        self._mitmproxys = manager.trigger_event
        for name in _CHANGES:
            setattr(manager, name, self._emptying(getattr(manager, name)))
        manager.trigger_event = self.trigger_event

    def uninstall(self) -> None:
        for name in ("trigger_event", *_CHANGES):
            self.manager.__dict__.pop(name, None)
        self._groups.clear()

    def _emptying(self, change: Callable[..., Any]) -> Callable[..., Any]:
        def changing(*args):
            self._groups.clear()
            try:
                return change(*args)
            finally:
                self._groups.clear()

        return changing

    def groups(self, name: str) -> Groups | None:
        groups = self._groups.get(name, _UNKNOWN)
        if groups is _UNKNOWN:
            try:
                groups = _handlers(self.manager.chain, name)
            except Exception:  # (an addon's lookup failed: mitmproxy's own dispatch reports it, at every event)
                groups = None
            if threading.get_ident() == self._thread:  # (a log record's thread may walk while the loop changes them)
                self._groups[name] = groups
        return groups  # type: ignore[return-value]

    async def trigger_event(self, event) -> None:
        groups = self.groups(event.name)
        if groups is None:
            return await self._mitmproxys(event)
        if not groups:
            return
        args = event.args()
        for handlers in groups:
            try:
                for handler in handlers:
                    answer = handler(*args)
                    if answer is not None and inspect.isawaitable(answer):
                        await answer
            except exceptions.AddonHalt:
                return
            except exceptions.OptionsError:
                raise
            except Exception as error:
                tb = cut_traceback(error.__traceback__, "trigger_event")
                logger.error(f"Addon error: {error}", exc_info=(type(error), error, tb))


def _handlers(chain, name: str) -> Groups | None:
    groups: Groups = []
    for addon in chain:
        handlers = []
        for a in traverse([addon]):
            handler = getattr(a, name, None)
            if not handler or isinstance(handler, types.ModuleType):
                continue
            if not callable(handler):
                return None  # (reported by mitmproxy's own dispatch, at every event)
            handlers.append(handler)
        if handlers:
            groups.append(handlers)
    return groups


def _legacy_handlers() -> list[logging.Handler]:
    """mitmproxy's handlers that feed the `add_log` hook (none in a mitmproxy that no longer has it)."""
    legacy = getattr(log, "LegacyLogEvents", None)
    return [h for h in logging.getLogger().handlers if legacy is not None and isinstance(h, legacy)]


class _WhileHeard(logging.Filter):
    """Lets a record through while an addon loaded has an `add_log` hook (or one that mitmproxy would report)."""

    def __init__(self, table: Handlers) -> None:
        super().__init__()
        self.table = table

    def filter(self, record: logging.LogRecord) -> bool:
        return self.table.groups("add_log") != []

"""addons/dispatch.py: mitmproxy's deprecated `add_log` hook is fed only while an addon has one."""

from __future__ import annotations

import asyncio
import logging
import traceback

import pytest
from mitmproxy import exceptions
from mitmproxy.addons import script
from mitmproxy.proxy.layers.http import HttpRequestHook, HttpResponseHook
from mitmproxy.test import taddons, tflow

from addons.dispatch import HandlersOnly

logger = logging.getLogger("rotator")


class Listener:
    def __init__(self) -> None:
        self.entries: list[str] = []

    def add_log(self, entry) -> None:
        self.entries.append(entry.msg.partition("] ")[2])  # (after the time mitmproxy puts in front)


async def settle() -> None:
    for _ in range(3):  # (mitmproxy hands a record to the hook from the loop's thread-safe queue)
        await asyncio.sleep(0)


async def test_without_an_add_log_hook_no_record_is_dispatched_to_the_addons(caplog):
    caplog.set_level(logging.INFO)  # (as under mitmdump)
    with taddons.context(HandlersOnly()) as tctx:
        dispatched = []
        trigger = tctx.master.addons.trigger
        tctx.master.addons.trigger = lambda event: dispatched.append(event) or trigger(event)
        logger.info("rotator: openai 1a2b3c4d: usage: gpt-4.1: input 8")
        logging.getLogger("mitmproxy.proxy.server").info("Streaming response from api.openai.com.")
        await settle()
        assert [e for e in dispatched if e.name == "add_log"] == []


async def test_an_add_log_hook_gets_every_record_even_when_loaded_later(caplog):
    caplog.set_level(logging.INFO)
    hook = HandlersOnly()
    with taddons.context(hook) as tctx:
        logger.info("rotator: before any listener")
        await settle()
        listener = Listener()
        tctx.master.addons.add(listener)
        logger.info("rotator: openai 1a2b3c4d: usage: gpt-4.1: input 8")
        await settle()
        assert "rotator: openai 1a2b3c4d: usage: gpt-4.1: input 8" in listener.entries
        tctx.master.addons.remove(listener)
        logger.info("rotator: after the listener left")
        await settle()
        assert "rotator: after the listener left" not in listener.entries


async def test_the_filter_is_removed_when_the_addon_is_done(caplog):
    caplog.set_level(logging.INFO)
    hook = HandlersOnly()
    with taddons.context(hook) as tctx:
        tctx.master.addons.remove(hook)
        listener = Listener()
        dispatched = []
        trigger = tctx.master.addons.trigger
        tctx.master.addons.trigger = lambda event: dispatched.append(event) or trigger(event)
        logger.info("rotator: as mitmproxy alone does")
        await settle()
        assert [e.name for e in dispatched] == ["add_log"]
        assert listener.entries == []


class Plain:
    pass


async def test_an_addon_replaced_by_one_with_the_hook_is_heard(caplog):
    """As when a script is reloaded with an `add_log` hook: as many addons loaded before as after."""
    caplog.set_level(logging.INFO)
    plain = Plain()
    with taddons.context(HandlersOnly(), plain) as tctx:
        logger.info("rotator: nobody listens yet")
        await settle()
        listener = Listener()
        quiet = logging.getLogger("mitmproxy.addonmanager")  # (its warning about add_log would be a record between)
        quiet.disabled = True
        try:
            tctx.master.addons.remove(plain)
            tctx.master.addons.add(listener)
        finally:
            quiet.disabled = False
        logger.info("rotator: openai 1a2b3c4d: usage: gpt-4.1: input 8")
        await settle()
        assert "rotator: openai 1a2b3c4d: usage: gpt-4.1: input 8" in listener.entries


# Events: each handled only by the addons that have a handler, by mitmproxy's own rules.


class Recorder:
    """An addon whose hooks say, in `calls`, that they ran (`request` sync, `response` async), with children."""

    def __init__(self, name: str, calls: list[str], children=(), fails: str = "", halts: str = "") -> None:
        self.name, self.calls, self.addons = name, calls, list(children)
        self.fails, self.halts = fails, halts

    def _ran(self, hook: str) -> None:
        self.calls.append(f"{self.name}.{hook}")
        if self.fails == hook:
            raise ValueError(f"{self.name} failed")
        if self.halts == hook:
            raise exceptions.AddonHalt

    def request(self, flow) -> None:
        self._ran("request")

    async def response(self, flow) -> None:
        await asyncio.sleep(0)
        self._ran("response")


class Silent:
    def __init__(self, name: str, children=()) -> None:
        self.name, self.addons = name, list(children)


def a_tree(calls: list[str], **misbehaving) -> list:
    """Three addons for the chain, with children and grandchildren; `misbehaving` names an addon and its trait."""

    def made(name: str, children=()):
        trait = misbehaving.get(name, {})
        return Recorder(name, calls, children, **trait)

    return [made("a", [made("a1", [made("a11")]), Silent("a2"), made("a3")]),
            Silent("b", [made("b1")]),
            made("c")]


async def served_by(dispatch: str, events: list[str], **misbehaving) -> tuple[list[str], list[str]]:
    """What each event reached, and the errors logged, with mitmproxy's own dispatch or with HandlersOnly."""
    calls: list[str] = []
    tree = a_tree(calls, **misbehaving)
    loaded = [HandlersOnly(), *tree] if dispatch == "handlers only" else tree
    with taddons.context(*loaded) as tctx:
        errors: list[str] = []
        handler = _Collect(errors)
        logging.getLogger("mitmproxy.addonmanager").addHandler(handler)
        try:
            flow = tflow.tflow(resp=True)
            for name in events:
                event = HttpRequestHook(flow) if name == "request" else HttpResponseHook(flow)
                await tctx.master.addons.handle_lifecycle(event)
        finally:
            logging.getLogger("mitmproxy.addonmanager").removeHandler(handler)
    return calls, errors


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__()
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


@pytest.mark.parametrize("misbehaving", [
    {},
    {"a1": {"fails": "request"}},
    {"a11": {"fails": "response"}},
    {"c": {"fails": "request"}},
    {"a3": {"halts": "request"}},
    {"b1": {"halts": "response"}},
], ids=["all well", "a child fails", "a grandchild fails, async", "the last fails", "a child halts",
        "an async one halts"])
async def test_every_event_reaches_the_addons_mitmproxy_would_call_in_its_order(misbehaving):
    events = ["request", "response", "request"]
    theirs = await served_by("mitmproxy", events, **misbehaving)
    ours = await served_by("handlers only", events, **misbehaving)
    assert ours == theirs
    assert len(theirs[0]) >= 3


async def test_an_error_is_logged_as_mitmproxy_logs_it_with_the_addons_own_frames(caplog):
    caplog.set_level(logging.ERROR)
    calls: list[str] = []
    with taddons.context(HandlersOnly(), Recorder("x", calls, fails="request")) as tctx:
        await tctx.master.addons.handle_lifecycle(HttpRequestHook(tflow.tflow()))
    [record] = [r for r in caplog.records if r.name == "mitmproxy.addonmanager"]
    assert record.getMessage() == "Addon error: x failed"
    frames = traceback.extract_tb(record.exc_info[2])
    assert [f.name for f in frames] == ["request", "_ran"]


class Counted:
    """An addon that counts the attributes looked up on it (a walk over the addons looks up the event's name)."""

    addons: list = []

    def __init__(self) -> None:
        self.looked_up: list[str] = []

    def __getattr__(self, name: str):
        if not name.startswith("__"):
            self.looked_up.append(name)
        raise AttributeError(name)


async def test_the_addons_are_not_walked_again_for_an_event_already_dispatched():
    counted = Counted()
    with taddons.context(HandlersOnly(), counted) as tctx:
        flow = tflow.tflow(resp=True)
        await tctx.master.addons.handle_lifecycle(HttpRequestHook(flow))
        counted.looked_up.clear()
        for _ in range(3):
            await tctx.master.addons.handle_lifecycle(HttpRequestHook(flow))
        assert counted.looked_up == []  # (neither `request` nor the `update` after it)


async def test_without_it_every_event_walks_every_addon():
    """The test above's measure, with mitmproxy's own dispatch: it can tell."""
    counted = Counted()
    with taddons.context(counted) as tctx:
        flow = tflow.tflow(resp=True)
        await tctx.master.addons.handle_lifecycle(HttpRequestHook(flow))
        counted.looked_up.clear()
        await tctx.master.addons.handle_lifecycle(HttpRequestHook(flow))
        assert counted.looked_up == ["request", "update"]


async def test_an_addon_loaded_or_removed_later_is_heard_or_not_from_then_on():
    calls: list[str] = []
    with taddons.context(HandlersOnly()) as tctx:
        flow = tflow.tflow(resp=True)
        await tctx.master.addons.handle_lifecycle(HttpRequestHook(flow))
        late = Recorder("late", calls, [Recorder("child", calls)])
        tctx.master.addons.add(late)
        await tctx.master.addons.handle_lifecycle(HttpRequestHook(flow))
        assert calls == ["late.request", "child.request"]
        tctx.master.addons.remove(late)
        await tctx.master.addons.handle_lifecycle(HttpRequestHook(flow))
        assert calls == ["late.request", "child.request"]


async def test_a_script_reloaded_with_the_same_number_of_addons_is_heard_in_its_new_version(tmp_path):
    """mitmdump reloads a script whose file changed: its module's addons are removed and the new ones registered."""
    path = tmp_path / "user_addon.py"
    path.write_text(_USER_SCRIPT.format(version="first"))
    loader = script.ScriptLoader()
    with taddons.context(HandlersOnly(), loader) as tctx:
        tctx.configure(loader, scripts=[str(path)])
        [user_script] = loader.addons
        user_script.loadscript()  # (what its watcher does when the file changes)
        flow = tflow.tflow(resp=True)
        await tctx.master.addons.handle_lifecycle(HttpRequestHook(flow))
        assert flow.request.headers["x-version"] == "first"
        path.write_text(_USER_SCRIPT.format(version="second"))
        user_script.loadscript()
        flow = tflow.tflow(resp=True)
        await tctx.master.addons.handle_lifecycle(HttpRequestHook(flow))
        assert flow.request.headers["x-version"] == "second"


_USER_SCRIPT = """
class Marks:
    def request(self, flow):
        flow.request.headers["x-version"] = "{version}"

addons = [Marks()]
"""


class Misconfigured:
    request = "not a function"


async def test_a_hook_that_is_not_callable_is_still_reported_by_mitmproxy(caplog):
    caplog.set_level(logging.ERROR)
    with taddons.context(HandlersOnly(), Misconfigured()) as tctx:
        await tctx.master.addons.handle_lifecycle(HttpRequestHook(tflow.tflow()))
    assert any("not callable" in r.getMessage() for r in caplog.records)


async def test_when_done_mitmproxy_dispatches_its_events_again():
    counted = Counted()
    handlers_only = HandlersOnly()
    with taddons.context(handlers_only, counted) as tctx:
        tctx.master.addons.remove(handlers_only)
        assert "trigger_event" not in vars(tctx.master.addons)
        counted.looked_up.clear()
        await tctx.master.addons.handle_lifecycle(HttpRequestHook(tflow.tflow(resp=True)))
        assert counted.looked_up == ["request", "update"]


class Broken:
    def __getattr__(self, name: str):
        if name == "request":
            raise RuntimeError("a broken addon")
        raise AttributeError(name)


async def test_an_addon_whose_lookup_fails_is_reported_as_mitmproxy_reports_it_and_the_others_still_hear(caplog):
    caplog.set_level(logging.ERROR)
    calls: list[str] = []
    with taddons.context(HandlersOnly(), Broken(), Recorder("after", calls)) as tctx:
        for _ in range(2):
            await tctx.master.addons.handle_lifecycle(HttpRequestHook(tflow.tflow()))
    assert [r.getMessage() for r in caplog.records if r.name == "mitmproxy.addonmanager"] == [
        "Addon error: a broken addon"] * 2
    assert calls == ["after.request"] * 2

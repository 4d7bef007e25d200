"""addons/log_hook.py: mitmproxy's deprecated `add_log` hook is fed only while an addon has one."""

from __future__ import annotations

import asyncio
import logging

from mitmproxy.test import taddons

from addons.log_hook import LegacyLogHook

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
    with taddons.context(LegacyLogHook()) as tctx:
        dispatched = []
        trigger = tctx.master.addons.trigger
        tctx.master.addons.trigger = lambda event: dispatched.append(event) or trigger(event)
        logger.info("rotator: openai 1a2b3c4d: usage: gpt-4.1: input 8")
        logging.getLogger("mitmproxy.proxy.server").info("Streaming response from api.openai.com.")
        await settle()
        assert [e for e in dispatched if e.name == "add_log"] == []


async def test_an_add_log_hook_gets_every_record_even_when_loaded_later(caplog):
    caplog.set_level(logging.INFO)
    hook = LegacyLogHook()
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
    hook = LegacyLogHook()
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
    with taddons.context(LegacyLogHook(), plain) as tctx:
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

"""A plug-in that raises while it decides who pays (rewrite/lifecycle/hooks.py's `decide`) fails the request's
target honestly: nothing is sent upstream, and the client gets a 502 in its protocol's error shape naming the
plug-in; the process goes on."""

from __future__ import annotations

import asyncio
import json

from rewrite.lifecycle.hooks import Part, Plugin, plugins_for
from rewrite.lifecycle.setting import Setting
from tests.support.engine_harness import Upstream, sse
from tests.support.routed_exchange import CHAT_PATH, exchange, router
from tests.support.samples import CHAT_TEXT


class Unsure(Part):
    def paying(self, e):
        raise LookupError("no such account")


class UnsurePayer(Plugin):
    name = "unsure-payer"

    def engage(self, ctx) -> Part | None:
        return Unsure()


def test_a_plugin_that_raises_deciding_who_pays_fails_the_target_in_the_protocols_error_shape():
    rt = router()
    setting = Setting(rt.config, router=rt)
    upstream = Upstream([lambda r: sse([CHAT_TEXT])])
    body = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    out, job = asyncio.run(exchange("api.openai.com", CHAT_PATH, body, upstream, router=rt,
                                    plugins=[UnsurePayer(setting), *plugins_for(setting)]))
    assert out.status == 502 and upstream.seen == []
    error = json.loads(out.body)["error"]
    assert "plug-in unsure-payer failed in its paying hook: LookupError: no such account" in error["message"]

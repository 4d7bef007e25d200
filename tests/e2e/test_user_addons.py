"""A user's own mitmproxy addon beside Rotator (`mitmdump -s addons/rotator.py -s mine.py`), through the real proxy
and the official SDK: it hears every event of the flows Rotator serves, streamed or answered whole, its `update`
hook included, and when mitmdump reloads its changed file, the new version is what runs (addons/dispatch.py hands
each event only to the addons that handle it, from a table made again whenever the addons loaded change)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.clients import MODELS, make_client

pytestmark = pytest.mark.e2e

USER_ADDON = '''
class Mine:
    """Says in each answer's headers which version of it ran, and which of the flow's events it heard."""

    def requestheaders(self, flow):
        flow.metadata["mine"] = ["requestheaders"]

    def request(self, flow):
        flow.metadata["mine"].append("request")

    def update(self, flows):
        for flow in flows:
            flow.metadata.setdefault("mine", []).append("update")

    def responseheaders(self, flow):
        flow.metadata["mine"].append("responseheaders")
        self.response(flow)

    def response(self, flow):
        flow.response.headers["x-mine"] = "{version}: " + " ".join(flow.metadata["mine"])


addons = [Mine()]
'''


def heard(stream: bool) -> str:
    client = make_client("chat").with_options(max_retries=0)
    messages = [{"role": "user", "content": "Say hello."}]
    if stream:
        with client.chat.completions.with_streaming_response.create(
                model=MODELS["chat"], messages=messages, stream=True) as response:
            for _ in response.iter_lines():
                pass
            return response.headers["x-mine"]
    raw = client.chat.completions.with_raw_response.create(model=MODELS["chat"], messages=messages)
    assert raw.parse().choices[0].message.content
    return raw.headers["x-mine"]


def test_a_users_addon_hears_every_event_of_rotators_flows_and_runs_its_new_version_once_reloaded(
        fake_vendor, rotator, tmp_path: Path):
    mine = tmp_path / "mine.py"
    mine.write_text(USER_ADDON.replace("{version}", "first"))
    rotator(fresh=True, args=("-s", str(mine)))

    assert heard(stream=True) == "first: requestheaders update request update responseheaders"
    # (a stream's head leaves at `responseheaders`; a whole answer's at `response`, after one more `update`)
    assert heard(stream=False) == "first: requestheaders update request update responseheaders update"

    mine.write_text(USER_ADDON.replace("{version}", "second"))
    later = time.time() + 5
    os.utime(mine, (later, later))  # (mitmdump reloads a script whose modification time moved on)
    deadline = time.monotonic() + 30
    while (answer := heard(stream=True)).startswith("first") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answer == "second: requestheaders update request update responseheaders"
    assert heard(stream=False) == "second: requestheaders update request update responseheaders update"

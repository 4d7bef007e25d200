"""A model that refuses a parameter: the official SDKs through a real `mitmdump -s addons/rotator.py` get their
answer although the vendor answers the request as sent with its own 400 for `temperature`; Rotator sends it again
without the parameter, and the model's next requests go without it from the start. Flows read from a `-w` file.
"""

from __future__ import annotations

import pytest
from google.genai import types as gtypes

from tests.support.clients import FINISH, PROTOCOLS, call, make_client
from tests.support.fake_vendor import TEXT, Fault, sampling_of
from tests.support.flows import read_flows

pytestmark = pytest.mark.e2e

# How each SDK is asked for a temperature (Anthropic's 2.x SDK has no parameter for it any more).
TEMPERATURE = {
    "chat": {"temperature": 0.2},
    "responses": {"temperature": 0.2},
    "anthropic": {"extra_body": {"temperature": 0.2}},
    "gemini": {"config": gtypes.GenerateContentConfig(temperature=0.2)},
}
HOSTS = {"chat": "api.openai.com", "responses": "api.openai.com", "anthropic": "api.anthropic.com",
         "gemini": "generativelanguage.googleapis.com"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_refused_temperature_is_left_out_and_remembered(fake_vendor, rotator, tmp_path, protocol):
    path = tmp_path / "flows.mitm"
    proxy = rotator(fresh=True, args=("-w", str(path)))  # (what it remembers must not leak into other tests)
    fake_vendor.always(Fault.refuse_param("temperature"))
    client = make_client(protocol)

    first = call(protocol, client, stream=True, **TEMPERATURE[protocol])
    second = call(protocol, client, stream=True, **TEMPERATURE[protocol])
    refused, answered, next_one = fake_vendor.wait_for(3)

    assert (first.text, first.finish) == (second.text, second.finish) == (TEXT, FINISH[protocol]["text"])
    assert refused.status == 400 and sampling_of(refused.protocol, refused.body)["temperature"] == 0.2
    assert answered.status == next_one.status == 200
    assert "temperature" not in sampling_of(answered.protocol, answered.body)
    assert "temperature" not in sampling_of(next_one.protocol, next_one.body)  # at once, no second 400
    assert answered.credential == refused.credential  # a 400 says nothing against the key
    assert len(fake_vendor.calls()) == 3  # no SDK retry
    assert proxy.wait_log("param-refused").count("param-refused: temperature") == 1

    proxy.proc.stop()  # the flow file is complete once mitmdump has exited
    flows = [f for f in read_flows(path) if f.request.pretty_host == HOSTS[protocol]]
    assert len(flows) == 2
    assert "param-refused: temperature" in flows[0].comment
    [event] = flows[0].metadata["rotator"]["events"]
    assert (event["kind"], event["params"]) == ("param-refused", [refused_name(protocol)])
    assert "param-refused" not in flows[1].comment
    [step] = flows[1].metadata["rotator"]["steps"]  # the next request says what was left out of it, and why
    assert any(change.endswith("(param-refused): temperature") for change in step["changes"])


def refused_name(protocol: str) -> str:
    """The parameter as the engine names it in the flow's metadata (Gemini's holds its sampling fields)."""
    return "generationConfig.temperature" if protocol == "gemini" else "temperature"

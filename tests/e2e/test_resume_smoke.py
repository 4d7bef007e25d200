"""Smoke (temporary): a Responses stream cut after two deltas, continued."""
from __future__ import annotations

import pytest

from tests.support.fake_vendor import TEXT, Fault
from tests.support.reliability import DELTAS, FAST, PREFIX, assert_one_clean_answer, stream, warmed

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("protocol", ["responses", "gemini"])
def test_smoke(fake_vendor, rotator, protocol):
    warmed(rotator, fake_vendor, protocol, streaming=FAST)
    fake_vendor.script(Fault.cut_after(deltas=DELTAS, how="clean"), Fault().ok(TEXT[len(PREFIX):]))
    seen = stream(protocol)
    print(seen)
    assert seen.text == TEXT


@pytest.mark.parametrize("protocol", ["responses", "gemini"])
def test_smoke_calls(fake_vendor, rotator, protocol):
    warmed(rotator, fake_vendor, protocol, streaming=FAST)
    fake_vendor.script(Fault.cut_after(deltas=DELTAS, how="reset"), Fault().ok(TEXT[len(PREFIX):]))
    seen = stream(protocol)
    calls = fake_vendor.calls()
    print(calls[-1].body)
    assert len(calls) == 2
    assert seen.text == TEXT and seen.finish in ("completed", "STOP")


@pytest.mark.parametrize("protocol", ["responses", "gemini"])
def test_smoke_nonstream(fake_vendor, rotator, protocol):
    from tests.support.clients import call, make_client
    warmed(rotator, fake_vendor, protocol, streamed=False, streaming=FAST)
    fake_vendor.script(Fault.cut_after(deltas=DELTAS, how="reset"), Fault().ok(TEXT[len(PREFIX):]))
    answer = call(protocol, make_client(protocol), False)
    print(answer)
    assert len(fake_vendor.calls()) == 2

"""The usage windows an answer reports (protocols/windows.py), as the subscription logins' dialects read them
(protocols/logins/), and what their exhaustion answers mean to the error reader."""

from __future__ import annotations

import time

import pytest

import protocols
from protocols.logins import claude_login, copilot
from protocols.vendor_errors import ErrorKind
from protocols.windows import NO_WINDOWS, Window, WindowReader, WindowStatus, epoch, exhausted_until, merged
from tests.support import login_dialects as ld

NOW = 1_800_000_000.0
CLAUDE = WindowReader((claude_login.windows,))
COPILOT = WindowReader((copilot.windows,))
CLAUDE_ERRORS = protocols.registered("anthropic_messages").family.errors.with_dialects(claude_login.exhausted)
COPILOT_ERRORS = protocols.registered("openai_responses").family.errors.with_dialects(copilot.exhausted)


def unified(**values: str) -> list[tuple[str, str]]:
    return [(f"anthropic-ratelimit-unified-{k.replace('_', '-')}", v) for k, v in values.items()]


def test_the_plan_windows_of_a_claude_login_are_its_utilisations_resets_and_the_claim_that_limits_now():
    headers = unified(status="allowed_warning", reset=str(int(NOW) + 600), representative_claim="five_hour",
                      **{"5h_utilization": "0.93", "5h_reset": str(int(NOW) + 600), "7d_utilization": "0.4",
                         "7d_reset": str(int(NOW) + 86400), "overage_utilization": "0", "overage_status": "rejected"})

    five, seven = CLAUDE.read(200, headers, b"", NOW)

    assert five == Window("five_hour", used=0.93, resets_at=NOW + 600, status=WindowStatus.WARNING, binding=True)
    assert seven == Window("seven_day", used=0.4, resets_at=NOW + 86400)  # (overage is extra usage, not a window)
    assert exhausted_until((five, seven), NOW) is None


def test_a_rejected_claim_is_an_exhausted_window_until_its_reset():
    headers = unified(status="rejected", reset=str(int(NOW) + 7200), representative_claim="seven_day",
                      **{"5h_utilization": "0.2", "7d_utilization": "1.0"})

    windows = CLAUDE.read(429, headers, b"", NOW)

    [seven] = [w for w in windows if w.name == "seven_day"]
    assert (seven.status, seven.resets_at, seven.binding) == (WindowStatus.EXHAUSTED, NOW + 7200, True)
    assert exhausted_until(windows, NOW) == NOW + 7200
    assert exhausted_until(windows, NOW + 7201) is None  # past its reset, no longer


@pytest.mark.parametrize("value", ["", "lots", "-1", "nan", "inf", "1e400"])
def test_values_a_vendor_got_wrong_are_left_out(value):
    headers = unified(status="allowed", representative_claim="five_hour",
                      **{"5h_utilization": value, "5h_reset": value})

    [five] = CLAUDE.read(200, headers, b"", NOW)

    assert (five.used, five.resets_at) == (None, None)


def test_copilots_quota_snapshots_are_windows_and_an_unlimited_one_is_none():
    now = time.time()  # (the fake's reset is 20 days from now)
    weekly_reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3 * 86400))
    headers = list(ld.windows(ld.COPILOT, used=0.25).items()) + [
        ("x-usage-ratelimit-weekly", f"remaining=6;resetAt={weekly_reset}")]

    premium, weekly = COPILOT.read(200, headers, b"", now)

    assert (premium.name, premium.used, premium.limit, premium.remaining) == ("premium_interactions", 0.25, 300, 225)
    assert premium.resets_at == pytest.approx(now + 20 * 86400, abs=2)
    assert (weekly.name, weekly.remaining, weekly.resets_at) == ("weekly", 6, epoch(weekly_reset))


def test_copilots_older_snapshot_form_reads_too():
    [premium] = COPILOT.read(200, [("x-quota-snapshot-premium_interactions", "ent=300;rem=60")], b"", NOW)

    assert (premium.used, premium.remaining) == (pytest.approx(0.4), 180)


def test_a_reader_without_dialects_reads_nothing_and_a_family_nobody_registered_gets_it():
    assert NO_WINDOWS.read(200, unified(status="rejected"), b"", NOW) == ()
    assert protocols.registry.windows("nobody-registered-this") is NO_WINDOWS
    # An API key's reader reads its vendor's limits, not a login's plan windows (those are the login's dialect).
    assert protocols.registry.windows("anthropic").read(200, unified(status="rejected"), b"", NOW) == ()


def test_merged_windows_keep_what_a_later_answer_did_not_report():
    old = (Window("five_hour", used=0.1), Window("seven_day", used=0.2))

    assert merged(old, (Window("five_hour", used=0.5),)) == (Window("five_hour", used=0.5), Window("seven_day", used=0.2))


def test_a_share_comes_from_what_is_left_when_none_is_reported():
    assert Window("tokens", remaining=250, limit=1000).share == 0.75
    assert Window("tokens", remaining=250).share is None
    assert Window("x", used=0.5, resets_at=NOW).as_json() == {"name": "x", "used": 0.5,
                                                               "resets_at": "2027-01-15T08:00:00Z"}


# -- what the exhaustion answers mean to the error reader


def test_a_claude_logins_429_with_a_rejected_plan_is_a_spent_quota_until_its_reset():
    fault = ld.exhausted(ld.CLAUDE_LOGIN, resets_in=3600)
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"Error"}}'

    error = CLAUDE_ERRORS.read(429, fault.headers, body, time.time())

    assert error.kind is ErrorKind.QUOTA
    assert error.quota is not None and error.quota.id == "five_hour" and not error.quota.per_model
    assert error.quota.window == pytest.approx(3600, abs=2)


def test_a_claude_logins_plain_rate_limit_or_overload_is_no_exhaustion():
    allowed = ld.windows(ld.CLAUDE_LOGIN, used=0.5)
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'

    assert CLAUDE_ERRORS.read(429, allowed.items(), body, NOW).kind is ErrorKind.RATE_LIMITED
    assert CLAUDE_ERRORS.read(529, allowed.items(), b"{}", NOW).kind is ErrorKind.OVERLOADED


def test_copilots_402_quota_exceeded_is_the_models_spent_quota_until_the_snapshots_reset():
    fault = ld.exhausted(ld.COPILOT)
    body = b'{"error":{"message":"You have no quota","code":"quota_exceeded"}}'

    error = COPILOT_ERRORS.read(402, fault.headers, body, time.time())

    assert error.kind is ErrorKind.QUOTA and error.message == "You have no quota"
    assert error.quota is not None and error.quota.per_model and error.quota.id == "quota_exceeded"
    assert error.quota.window == pytest.approx(20 * 86400, abs=2)  # until the premium requests' reset


def test_another_402_is_the_requests_own_fault():
    body = b'{"error":{"message":"Payment required","code":"billing_not_configured"}}'

    assert COPILOT_ERRORS.read(402, [], body, NOW).kind is ErrorKind.REQUEST

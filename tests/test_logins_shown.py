"""What a person and a scraper see of the subscription logins: the status page, `/metrics`, `rotator.pools` and the
flow's view; a login masked everywhere, its plan windows, its exhaustion, its cost covered by the plan."""

from __future__ import annotations

import json
import time

from prometheus_client.parser import text_string_to_metric_families

from protocols.windows import Window, WindowStatus
from rewrite.accounting.metrics import Metrics, Tally
from rewrite.inspection.status import page, render_json, render_text
from rewrite.inspection.status_page import render_html
from rewrite.inspection.views import Facts, render_response
from rewrite.pool.logins import LoginBook, login_table

TOKEN = "sk-ant-oat01-the-users-own-login"
RESET = time.time() + 3600


def book() -> LoginBook:
    logins = LoginBook("claude_login")
    state = logins.login(TOKEN)
    logins.reported(state, (Window("five_hour", used=1.0, resets_at=RESET, status=WindowStatus.EXHAUSTED, binding=True),
                            Window("seven_day", used=0.3, resets_at=RESET + 86400)))
    state.answered(1234)
    return logins


def flow_record() -> dict:
    """`flow.metadata["rotator"]` of an answer served on the login."""
    return {"provider": "claude_login", "model": "claude-opus-4-8", "key": None, "events": [],
            "usage": {"input_tokens": 100, "output_tokens": 20, "reasoning_tokens": 0, "cache_read_tokens": 0,
                      "cache_write_tokens": 0}, "cost": None, "covered": "plan",
            "login": {"id": "f" * 24, "credential": "sk-a…ogin",
                      "windows": [{"name": "five_hour", "used": 0.12, "status": "allowed", "resets_at": "2027-01-01T05:00:00Z",
                                   "binding": True}]}}


def test_the_status_page_shows_each_login_masked_with_its_windows_and_exhaustion():
    tally = Tally()
    tally.record(flow_record())
    providers = [{"name": "claude_login", "family": "anthropic", "pool": None, "logins": book().describe()}]

    data = page(providers, [], tally, time.time())

    [login] = data["providers"][0]["logins"]
    assert login["login"] == "sk-a…ogin" and login["requests"] == 1 and login["tokens"] == 1234
    assert [w["name"] for w in login["windows"]] == ["five_hour", "seven_day"]
    assert login["exhausted"][0]["why"] == "the plan's five_hour window is used up"
    assert data["cost"] == {"usd": 0, "unpriced_requests": 0, "covered_by_plan": 1}
    text = render_text(data).decode()
    assert "subscription logins (each client's own, never pooled):" in text
    assert "sk-a…ogin: five_hour 100% used, exhausted, resets" in text and "exhausted until" in text
    assert "1 requests covered by a plan" in text
    for body in (render_text(data), render_html(data), render_json(data)):
        assert TOKEN.encode() not in body


def test_metrics_carry_each_logins_windows_and_whether_it_is_exhausted():
    metrics = Metrics(logins=lambda: [{"provider": "claude_login", "logins": book().describe()}])
    metrics.record(flow_record())

    body, _ = metrics.exposition()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(body.decode()) for s in family.samples}

    login = (("login", "sk-a…ogin"), ("provider", "claude_login"))
    assert samples[("rotator_login_window_used_ratio", (*login, ("window", "five_hour")))] == 1.0
    assert samples[("rotator_login_window_used_ratio", (*login, ("window", "seven_day")))] == 0.3
    assert abs(samples[("rotator_login_window_reset_timestamp_seconds", (*login, ("window", "five_hour")))]
               - RESET) < 1
    assert samples[("rotator_login_exhausted", login)] == 1
    model = (("model", "claude-opus-4-8"), ("provider", "claude_login"))
    assert samples.get(("rotator_unpriced_answers_total", model)) == 0  # covered, not of unknown price
    assert TOKEN.encode() not in body


def test_the_pools_command_lists_the_logins_after_the_pools():
    table = login_table({"provider": "claude_login", "logins": book().describe()})

    assert table.splitlines()[0] == "claude_login (subscription logins, each the client's own, never pooled): 1 seen"
    assert "sk-a…ogin  requests 1  tokens 1234  five_hour 100% used" in table and TOKEN not in table


def test_the_flow_view_says_whose_login_served_and_that_the_plan_covered_it():
    answer = (b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    facts = Facts(protocol="anthropic_messages", path="/v1/messages?beta=true",
                  request_body=json.dumps({"model": "claude-opus-4-8", "messages": []}).encode(), status=200,
                  content_type="text/event-stream", response_body=answer, rotator=flow_record())

    text = render_response(facts)

    assert "served by provider claude_login · the client's own login sk-a…ogin (never pooled)" in text
    assert "cost: covered by the plan" in text
    assert "plan: five_hour 12% used, resets 2027-01-01T05:00:00Z" in text

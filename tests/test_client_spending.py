"""Clients' spending, pure: proxy credentials checked as client keys are, the book's figures per calendar period
(UTC) and in the state file's records, and the budget, limit and models check."""

from __future__ import annotations

import base64
import calendar

import pytest

from rewrite.accounting.client_book import ClientBook
from rewrite.accounting.client_rules import BudgetConfig, ClientRules, LimitConfig
from rewrite.config import ConfigError, parse
from rewrite.inspection.trail import trail_lines
from rewrite.intake.clients import NO_PROXY_MATCH, ClientKeys, Guesses, basic_credentials, check_proxy
from tests.support.timing import FakeClock

A, B = "rk-aaa-0123456789abcdef", "rk-bbb-0123456789abcdef"
KEYS = ClientKeys(parse(f"clients: [{{name: a, key: {A}}}, {{name: b, key: {B}}}]").clients)
# 2026-11-30 (a Monday) 23:59:30 UTC
LATE = float(calendar.timegm((2026, 11, 30, 23, 59, 30)))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_proxy_credentials_name_a_client_only_by_its_own_name_and_key():
    guesses = Guesses(clock=FakeClock())
    assert check_proxy(KEYS, guesses, "10.0.0.1", basic("a", A)).client == "a"
    for wrong in (basic("a", B), basic("b", A), basic("c", A), "Bearer " + A, "Basic !!!", basic("a", "")):
        verdict = check_proxy(KEYS, guesses, "10.0.0.2", wrong)
        assert (verdict.client, verdict.status, verdict.reason) == (None, 407, NO_PROXY_MATCH)
    assert basic_credentials(basic("a", "x:y")) == ("a", "x:y")  # (a key may hold a colon; a name may not)


def test_wrong_proxy_credentials_count_toward_the_addresses_guessing_limit():
    clock = FakeClock()
    guesses = Guesses(burst=3, window=60, clock=clock)
    for _ in range(3):
        assert check_proxy(KEYS, guesses, "10.0.0.1", basic("a", "rk-guess-0123456789")).status == 407
    limited = check_proxy(KEYS, guesses, "10.0.0.1", basic("a", A))
    assert (limited.status, limited.retry_after) == (429, 60)
    assert check_proxy(KEYS, guesses, "10.0.0.9", basic("a", A)).client == "a"  # (another address may)


def figures(requests=1, inp=100, out=10, cost=0.5) -> list[float]:
    return [requests, inp, out, 0, 0, cost, 0, 0]


def test_the_book_counts_each_period_under_way_and_starts_the_next_afresh():
    clock = FakeClock(LATE)
    book = ClientBook(clock)
    book.add("a", "openai", "gpt-5", figures())
    book.add("a", "anthropic", "claude-sonnet-4-5", figures(cost=1.0))
    assert book.spent("a", "dollars", "day", clock.now) == 1.5
    assert book.spent("a", "requests", "minute", clock.now) == 2
    assert book.spent("a", "tokens", "hour", clock.now) == 220
    assert book.spent("b", "dollars", "day", clock.now) == 0
    clock.advance(60)  # 2026-12-01 00:00:30: a new minute, hour, day and month; the same week
    assert book.spent("a", "dollars", "day", clock.now) == 0 and book.spent("a", "dollars", "month", clock.now) == 0
    assert book.spent("a", "dollars", "week", clock.now) == 1.5 and book.spent("a", "dollars", None, clock.now) == 1.5
    book.add("a", "openai", "gpt-5", figures())
    [claude, gpt] = book.describe()
    assert (gpt["model"], gpt["day"]["requests"], gpt["total"]["requests"], gpt["total"]["cost"]) == ("gpt-5", 1, 2, 1.0)
    assert (claude["day"]["requests"], claude["total"]["requests"]) == (0, 1)


def test_the_books_records_restore_what_it_counted():
    clock = FakeClock(LATE)
    book = ClientBook(clock)
    changes = []
    book.on_change = lambda: changes.append(1)
    book.add("a", "openai", "gpt-5", figures())
    book.add("a", "openai", "gpt-5", figures())
    assert book.dirty and changes == [1]
    records = book.export()
    assert not book.dirty
    again = ClientBook(clock)
    again.restore(records)
    assert again.describe() == book.describe()
    assert again.spent("a", "dollars", "minute", clock.now) == 1.0


def rules(**kwargs) -> ClientRules:
    return ClientRules("ci", kwargs.get("budget"), kwargs.get("limits", []), kwargs.get("models", []))


def test_a_budget_refuses_once_spent_with_retry_after_to_the_periods_end():
    ci = rules(budget=BudgetConfig(dollars=20, per="day"))
    assert ci.check("gpt-5", lambda unit, per, now: 19.99, 0, LATE) is None
    refusal = ci.check("gpt-5", lambda unit, per, now: 20.0, 0, LATE)
    assert refusal is not None
    assert (refusal.status, refusal.figure, refusal.retry_after) == (429, "budget of $20 per day", 30)
    assert "client ci is over its budget of $20 per day (spent $20)" in refusal.message
    total = rules(budget=BudgetConfig(dollars=5)).check("gpt-5", lambda unit, per, now: 5.0, 0, LATE)
    assert total is not None and (total.figure, total.retry_after) == ("budget of $5 in all", 0)


def test_a_request_limit_counts_the_requests_in_flight_and_a_token_limit_the_tokens():
    ci = rules(limits=[LimitConfig(per="minute", requests=3), LimitConfig(per="hour", tokens=1000)])
    spent = {"requests": 2.0, "tokens": 999.0}
    assert ci.check("gpt-5", lambda unit, per, now: spent[unit], 0, LATE) is None
    busy = ci.check("gpt-5", lambda unit, per, now: spent[unit], 1, LATE)
    assert busy is not None and (busy.figure, busy.retry_after) == ("limit of 3 requests per minute", 30)
    spent["tokens"] = 1000
    tokens = ci.check("gpt-5", lambda unit, per, now: spent[unit], 0, LATE)
    assert tokens is not None and (tokens.figure, tokens.retry_after) == ("limit of 1000 tokens per hour", 30)


def test_a_model_outside_models_is_refused_with_403_naming_what_is_allowed():
    ci = rules(models=["claude-sonnet-*", "gpt-5*"])
    nothing = lambda unit, per, now: 0.0  # noqa: E731
    assert ci.check("gpt-5-mini", nothing, 0, LATE) is None and ci.check(None, nothing, 0, LATE) is None
    refusal = ci.check("claude-opus-4-1", nothing, 0, LATE)
    assert refusal is not None and refusal.status == 403
    assert refusal.message.endswith("may not use the model claude-opus-4-1; its models are: claude-sonnet-*, gpt-5*")


@pytest.mark.parametrize("entry, field", [
    ("budget: {dollars: 0, per: day}", "clients.0.budget.dollars"),
    ("budget: {dollars: 5, per: fortnight}", "clients.0.budget.per"),
    ("limits: [{per: minute}]", "clients.0.limits.0"),
    ("limits: [{per: minute, requests: 3, tokens: 4}]", "clients.0.limits.0"),
    ("limits: [{requests: 3}]", "clients.0.limits.0.per"),
    ("models: ['']", "clients.0.models.0"),
])
def test_a_bad_budget_limit_or_models_entry_names_its_field(entry, field):
    with pytest.raises(ConfigError) as bad:
        parse(f"clients:\n  - name: ci\n    key: {A}\n    {entry}\n")
    assert str(bad.value).startswith(field + ":"), str(bad.value)
    assert "\n" not in str(bad.value)


def test_the_flows_view_says_which_figure_refused_the_request():
    rot = {"client": "ci", "client_check": {"client": "ci", "refused": "budget of $20 per day", "status": 429}}
    assert trail_lines(rot) == ["client ci: refused by its budget of $20 per day (429): no key taken, nothing sent "
                                "upstream"]

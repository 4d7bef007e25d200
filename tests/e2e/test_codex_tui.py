"""The real Codex CLI's TUI (`codex`, run in a pseudo-terminal: tests/support/terminal.py) logged in with ChatGPT (a
fake `auth.json`), through a real mitmdump running Rotator, its side calls answered by the stand-ins and its other
`/backend-api/codex/` calls by the fake vendor; every other host is refused, so nothing leaves 127.0.0.1
(tests/support/logins.py).

What only the TUI does (Codex 0.171): at start-up it reads the plan's usage (`GET /backend-api/wham/usage`) and,
when that counts reset credits (`rate_limit_reset_credits.available_count`), lists them (`GET
/backend-api/wham/rate-limit-reset-credits`); `/usage` → "Redeem reset" lists them again for the user to pick one.
`codex exec` does neither.
"""

from __future__ import annotations

import json

import pytest

from tests.support import logins, stand_ins
from tests.support.raw_http import through
from tests.support.terminal import Terminal
from tests.support.timing import PATIENCE, wait_until

pytestmark = pytest.mark.e2e

START_UP = 6 * PATIENCE  # seconds Codex's TUI may take to open and read its plan on a loaded machine
LISTED = "GET chatgpt.com/backend-api/wham/rate-limit-reset-credits -> 200"
DOWN, ENTER, ESC = "\x1b[B", "\r", "\x1b"


@pytest.fixture(scope="session")
def codex():
    return logins.need("codex")


def chatgpt_logins(proxy) -> list[dict]:
    status = json.loads(through(proxy).get("http://rotator.status/?format=json").text)
    return next(p for p in status["providers"] if p["name"] == "chatgpt")["logins"]


def listings(proxy) -> int:
    """How many times Codex listed its reset credits (the stand-ins answered it)."""
    return sum(1 for call in logins.side_calls(proxy) if call.endswith(LISTED))


def test_the_reset_credits_codex_reads_are_shown_on_its_login_and_never_redeemed(codex, rotator, fake_vendor,
                                                                                 tmp_path):
    proxy = logins.proxy_for(rotator, fake_vendor, tmp_path)
    login = logins.codex_tui(tmp_path, proxy)
    token = json.loads(login.files["auth"].read_text())["tokens"]["access_token"]
    assert not chatgpt_logins(proxy)  # nothing known of the login before Codex asks

    with Terminal(login.command, login.env, login.cwd, leftovers=login.home) as tui:
        # At start-up, before any key: Codex reads its usage, which counts two reset credits, and lists them.
        [entry] = wait_until(lambda: [x for x in chatgpt_logins(proxy) if "reset_credits" in x], START_UP,
                             what="the login's reset credits on the status page")
        assert entry["reset_credits"] == {"available": 2, "expires_at": list(stand_ins.RESET_CREDIT_LAPSES)}
        assert "reset credits: 2 available, the first lapsing 2099-01-01T00:00:00Z" in entry["text"]
        at_start = listings(proxy)

        # The user asks for them: /usage, then "Redeem reset"; Codex lists them again and shows what it was sent.
        mark = tui.mark()
        tui.type("/usage")
        tui.wait_for("view account usage or use a usage limit reset", since=mark)
        mark = tui.mark()
        tui.type(ENTER)
        tui.wait_for("Redeem reset", since=mark)
        mark = tui.mark()
        tui.type(DOWN)
        tui.wait_for("› 2. Redeem reset", since=mark)
        mark = tui.mark()
        tui.type(ENTER)
        tui.wait_for("2 usage limit resets available", since=mark)
        for lapse in ("1 Jan 2099", "1 Feb 2099"):
            tui.wait_for(f"Full reset (Weekly + 5 hr) Expires 12:00 AM on {lapse}", since=mark)
        tui.type(ESC)  # (none picked)

    assert listings(proxy) > at_start >= 1
    [entry] = chatgpt_logins(proxy)
    assert entry["reset_credits"] == {"available": 2, "expires_at": list(stand_ins.RESET_CREDIT_LAPSES)}
    assert not [c for c in logins.side_calls(proxy) if "consume" in c]  # Rotator never redeems one
    assert token not in json.dumps(entry) and token not in proxy.full_log

"""The real opencode with the `opencode-antigravity-auth` plugin (a Google Antigravity login), through a real
mitmdump, inside the cloud kit's namespace (tests/support/cloud_kit.py), where Cloud Code's real hostnames and
oauth2.googleapis.com are the fake's: its Code Assist dialect (tests/support/login_dialects.py) answers the plugin's
generation calls and its look-ups, its token endpoint the plugin's refresh of a fake Google login.

The plugin runs headless as shared/docs/antigravity.md found: its account in `antigravity-accounts.json` and
opencode's `auth.json` (a managed project: no `loadCodeAssist`), the plugin given by its file in opencode's config,
npm offline (opencode's own plugin install fails at once), its version look-ups unanswerable (it falls back).
opencode and the plugin are installed by scripts/setup-opencode and scripts/setup-antigravity-plugin (CI runs both);
without npm or its registry these tests skip, saying why.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support import login_dialects as ld
from tests.support import stand_ins
from tests.support.cloud_kit import CloudKit
from tests.support.fake_vendor import TEXT, Fault
from tests.support.flows import read_flows
from tests.support.harness import REPO, Rotator

pytestmark = pytest.mark.e2e

OPENCODE = REPO / ".cache" / "opencode" / "node_modules" / ".bin" / "opencode"
PLUGIN = REPO / ".cache" / "opencode-antigravity" / "node_modules" / "opencode-antigravity-auth" / "dist" / "index.js"
CLIENT_ID = "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com"  # Antigravity's public one
REFRESH = "1//fake-antigravity-refresh-token"
PROJECT = stand_ins.CODE_ASSIST_PROJECT
MODEL = "antigravity-claude-sonnet-4-6"  # opencode's name; `claude-sonnet-4-6` on the wire
SANDBOX = "daily-cloudcode-pa.sandbox.googleapis.com"
QUIET = {"OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_MODELS_FETCH": "1",
         "OPENCODE_DISABLE_LSP_DOWNLOAD": "1", "OPENCODE_DISABLE_SHARE": "1", "npm_config_offline": "true"}


def _installed(path: Path, script: str, what: str) -> Path:
    if not path.exists():
        setup = subprocess.run([str(REPO / "scripts" / script)], capture_output=True, text=True, timeout=600)
        if setup.returncode != 0:
            pytest.skip(f"{what} could not be installed with npm: {setup.stderr.strip()[-500:]}")
    return path


@pytest.fixture(scope="session")
def opencode_antigravity() -> tuple[Path, Path]:
    return (_installed(OPENCODE, "setup-opencode", "opencode"),
            _installed(PLUGIN, "setup-antigravity-plugin", "opencode-antigravity-auth"))


def run_opencode(cloud: CloudKit, proxy: Rotator, installed: tuple[Path, Path], tmp_path: Path,
                 timeout: float = 120) -> subprocess.CompletedProcess:
    """`opencode run -m google/antigravity-claude-sonnet-4-6 "Say hello"` on the plugin's Antigravity login."""
    opencode, plugin = installed
    home, work = tmp_path / "home", tmp_path / "work"
    config, data = home / ".config" / "opencode", home / ".local" / "share" / "opencode"
    for d in (config, data, work):
        d.mkdir(parents=True, exist_ok=True)
    (config / "opencode.json").write_text(json.dumps({
        "$schema": "https://opencode.ai/config.json", "autoupdate": False, "share": "disabled",
        "plugin": [plugin.as_uri()],
        "provider": {"google": {"models": {MODEL: {"name": "Claude Sonnet 4.6 (Antigravity)"}}}}}))
    (config / "antigravity-accounts.json").write_text(json.dumps({"version": 4, "activeIndex": 0, "accounts": [
        {"email": "user@example.com", "refreshToken": REFRESH, "projectId": PROJECT, "managedProjectId": PROJECT,
         "addedAt": 1, "lastUsed": 1, "enabled": True}]}))
    (data / "auth.json").write_text(json.dumps({"google": {"type": "oauth", "refresh": f"{REFRESH}|{PROJECT}|{PROJECT}",
                                                           "access": "", "expires": 0}}))
    ca = str(cloud.trusted(proxy))
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "HTTPS_PROXY": proxy.url,
           "NODE_EXTRA_CA_CERTS": ca, "SSL_CERT_FILE": ca, "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local" / "share"), "XDG_CACHE_HOME": str(home / ".cache"),
           "XDG_STATE_HOME": str(home / ".local" / "state"), **QUIET}
    return cloud.net.run([str(opencode), "run", "--format", "json", "-m", f"google/{MODEL}", "--title", "rotator test",
                          "Say hello"], env=env, cwd=work, timeout=timeout)


def said(done: subprocess.CompletedProcess) -> str:
    parts = [json.loads(line).get("part", {}) for line in done.stdout.splitlines() if line.startswith("{")]
    return "".join(p.get("text", "") for p in parts if p.get("type") == "text")


def status_of(cloud: CloudKit, proxy: Rotator) -> dict:
    """The status page's JSON, asked through the proxy inside the namespace."""
    done = cloud.net.run(["curl", "-sS", "-x", proxy.url, "http://rotator.status/?format=json"],
                         env=cloud.client_env(proxy))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def generation(cloud: CloudKit) -> list:
    return [r for r in cloud.fake.requests if "GenerateContent" in r.path]


@pytest.fixture
def antigravity_login(cloud):
    cloud.accounts.google_login(REFRESH, CLIENT_ID)
    return cloud


def test_opencode_on_antigravity_is_served_on_its_own_login(antigravity_login, opencode_antigravity, tmp_path):
    cloud = antigravity_login
    proxy = cloud.rotator(fresh=True, args=("-w", str(tmp_path / "flows")))

    done = run_opencode(cloud, proxy, opencode_antigravity, tmp_path)

    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    assert said(done) == TEXT
    [call] = generation(cloud)
    assert call.dialect == ld.CODE_ASSIST and call.body["model"] == "claude-sonnet-4-6"
    assert call.body["userAgent"] == "antigravity" and call.credential.startswith("ya29.fake-google-login-")
    proxy.proc.stop()
    [flow] = [f for f in read_flows(tmp_path / "flows") if "GenerateContent" in f.request.path]
    record = flow.metadata["rotator"]
    assert (record["provider"], record["covered"], record["key"]) == ("antigravity", "plan", None)
    assert call.credential.encode() not in (tmp_path / "flows").read_bytes()


def test_a_stalled_first_token_is_asked_again_on_the_same_login(antigravity_login, opencode_antigravity, tmp_path):
    """The plugin has no first-token timeout of its own (opencode would wait): Rotator's asks again."""
    cloud = antigravity_login
    proxy = cloud.rotator({"streaming": {"first_token_timeout": 2}}, fresh=True)
    cloud.fake.script(Fault.stall_before_headers(60), host=SANDBOX)

    done = run_opencode(cloud, proxy, opencode_antigravity, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert said(done) == TEXT
    first, second = generation(cloud)
    assert first.credential == second.credential and first.raw_body == second.raw_body


def test_a_cut_answer_is_continued_on_the_login(antigravity_login, opencode_antigravity, tmp_path):
    cloud = antigravity_login
    proxy = cloud.rotator(fresh=True)
    cloud.fake.script(Fault.cut_after(deltas=2, how="reset"), Fault.continuing(), host=SANDBOX)

    done = run_opencode(cloud, proxy, opencode_antigravity, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert said(done) == TEXT
    cut, rest = generation(cloud)
    assert rest.credential == cut.credential and rest.continued is not None
    assert {k: v for k, v in rest.body.items() if k != "request"} == {k: v for k, v in cut.body.items()
                                                                      if k != "request"}


def test_the_quota_the_plugin_reads_is_shown_as_the_login_s_windows(antigravity_login, opencode_antigravity,
                                                                     tmp_path):
    """After a turn the plugin reads its quota (`fetchAvailableModels` on the production host): its answer is kept on
    the login's entry."""
    cloud = antigravity_login
    proxy = cloud.rotator(fresh=True)

    done = run_opencode(cloud, proxy, opencode_antigravity, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert [r for r in cloud.fake.requests if r.path.endswith(":fetchAvailableModels")]
    status = status_of(cloud, proxy)
    # (a login is known by its access token: the plugin refreshes it again before its look-up, a second entry)
    logins = next(p for p in status["providers"] if p["name"] == "antigravity")["logins"]
    [looked_up] = [login for login in logins if login["windows"]]
    shown = {w["name"]: w for w in looked_up["windows"]}
    assert shown["claude-sonnet-4-5 quota"]["used"] == 0.6
    assert shown[f"{stand_ins.ANTIGRAVITY_SPENT} quota"]["status"] == "exhausted"
    assert "ya29." not in json.dumps(status)


def test_an_exhausted_model_is_carried_on_to_own_keys_through_from(antigravity_login, opencode_antigravity, tmp_path):
    cloud = antigravity_login
    proxy = cloud.rotator({"providers": {"gemini": {"keys": ["g-own-key-1"]}},
                           "routes": [{"from": "antigravity",
                                       "targets": ["antigravity", "gemini/gemini-2.5-flash"]}]}, fresh=True)
    cloud.fake.script(ld.exhausted(ld.CODE_ASSIST, resets_in=7200), host=SANDBOX)

    done = run_opencode(cloud, proxy, opencode_antigravity, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    assert said(done) == TEXT
    [spent] = generation(cloud)[:1]
    assert spent.status == 429
    [own] = [r for r in cloud.fake.requests if "generativelanguage" in r.headers.get("host", "")]
    assert own.credential == "g-own-key-1" and own.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert "userAgent" not in own.body and "ya29." not in json.dumps(own.headers)

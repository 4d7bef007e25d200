"""A mitmdump addon for the login tests: the four login CLIs' side calls answered by the stand-ins
(tests/support/stand_ins.py), every other host refused, so that nothing leaves 127.0.0.1.

Loaded after Rotator: `mitmdump -s addons/rotator.py -s tests/support/logins_addon.py --set logins_vendor=URL`.
It leaves alone what Rotator took (a flow Rotator serves is already pointed at its loopback server) and local
addresses. The generation paths of the login hosts (what Rotator's login providers serve) reach it only when
Rotator did not take them: they are refused, unless `logins_forward` is on; then they go to the fake vendor at
`logins_vendor`, their Host header kept, so the real CLIs can be driven against the fake vendor's dialects
without Rotator serving them. The login hosts' other paths the fake vendor answers (Copilot's `/models`, Anthropic's
`count_tokens`, Codex's other `/backend-api/codex/` calls), which Rotator leaves to mitmproxy as they came, always go
to the fake vendor, the same way.

Rotator tunnels the hosts no provider claims (addons/scope.py): the side hosts this addon stands in for (and every
other host it refuses) would reach the real internet. Loaded after Rotator, it opens those connections again
(`tls_clienthello`), as the world it stands in for would answer them.

Each answered or refused call is logged as one line: `logins: <what> <METHOD> <host><path> -> <status>`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

from mitmproxy import ctx, http, tls

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # (mitmdump loads this file by path)
from tests.support import stand_ins  # noqa: E402

LOCAL = ("127.0.0.1", "localhost", "::1")
# The login providers' generation paths, per host (tests/support/login_dialects.py serves them).
GENERATION = (
    ("chatgpt.com", re.compile(r"^/backend-api/codex/responses(?:/compact)?$")),
    ("cloudcode-pa.googleapis.com", re.compile(r"^/v1internal:(?:generateContent|streamGenerateContent|countTokens)$")),
    ("api.anthropic.com", re.compile(r"^/v1/messages$")),
    (stand_ins.COPILOT_HOSTS, re.compile(r"^/(?:responses|chat/completions|v1/messages)$")),
)
# The login hosts' other paths that the fake vendor answers: forwarded to it whether or not `logins_forward` is on.
VENDOR_OTHER = (
    ("api.anthropic.com", re.compile(r"^/v1/messages/count_tokens$")),
    ("chatgpt.com", re.compile(r"^/backend-api/codex/(?!responses(?:/compact)?$)")),  # (models, analytics)
    (stand_ins.COPILOT_HOSTS, re.compile(r"^/models$")),
)


def generation(host: str, path: str, table: tuple = GENERATION) -> bool:
    path = path.partition("?")[0]
    for hosts, paths in table:
        if (hosts.match(host) if isinstance(hosts, re.Pattern) else host == hosts) and paths.match(path):
            return True
    return False


class LoginStandIns:
    def load(self, loader) -> None:
        loader.add_option("logins_vendor", str, "", "The fake vendor's URL (http://127.0.0.1:PORT).")
        loader.add_option("logins_forward", bool, False,
                          "Forward the login hosts' generation paths to logins_vendor (Rotator does not serve them).")
        loader.add_option("logins_copilot_api", str, stand_ins.COPILOT_API,
                          "The API host api.github.com/copilot_internal/user names.")

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        data.ignore_connection = False  # (every host is the stand-ins' or refused: none is tunnelled out)

    def request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        if flow.response is not None or flow.error is not None or req.host in LOCAL:
            return  # answered already, taken by Rotator (its loopback server), or local
        host = req.pretty_host.lower()
        if host in LOCAL:
            return
        if generation(host, req.path, VENDOR_OTHER):
            self._forward(flow, host)
            return
        if generation(host, req.path):
            if ctx.options.logins_forward:
                self._forward(flow, host)
            else:  # (Rotator serves these, or should have)
                self._refuse(flow, host, "refused (a generation path Rotator did not take)")
            return
        headers = {k.lower(): v for k, v in req.headers.items()}
        found = stand_ins.answer(host, req.method, req.path, req.raw_content or b"", headers,
                                 ctx.options.logins_copilot_api)
        if found is None:
            self._refuse(flow, host, "refused")
            return
        body, headers = found.wire()
        flow.response = http.Response.make(found.status, body, headers)
        ctx.log.info(f"logins: stand-in {req.method} {host}{req.path} -> {found.status}")

    @staticmethod
    def _refuse(flow: http.HTTPFlow, host: str, what: str) -> None:
        req = flow.request
        flow.response = http.Response.make(403, f"{what} by the tests' stand-in addon".encode(),
                                           {"content-type": "text/plain"})
        ctx.log.info(f"logins: {what} {req.method} {host}{req.path} -> 403")

    def _forward(self, flow: http.HTTPFlow, host: str) -> None:
        vendor = urlsplit(ctx.options.logins_vendor)
        if not vendor.hostname:
            flow.response = http.Response.make(502, b"logins_forward is on but logins_vendor is not set")
            return
        req = flow.request
        authority = req.host_header
        req.scheme, req.host, req.port = "http", vendor.hostname, vendor.port or 80
        if authority:
            req.host_header = authority  # (the setters above rewrote it)
        flow.metadata["logins_forwarded"] = host
        ctx.log.info(f"logins: forwarded {req.method} {host}{req.path} -> {vendor.hostname}:{req.port}")

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None and "logins_forwarded" in flow.metadata:
            flow.response.stream = True  # a forwarded stream reaches the CLI event by event


addons = [LoginStandIns()]

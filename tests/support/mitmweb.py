"""The harness's proxy process run as mitmweb: the same addon and config, a web UI behind a password on a port of its
own."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from tests.support.harness import MITMDUMP, RotatorProcess, free_port

MITMWEB = MITMDUMP.with_name("mitmweb")


@dataclass
class MitmwebProcess(RotatorProcess):
    password: str = "rotator-test-web-password"
    web_port: int = 0  # drawn with the proxy's port at each start attempt (mitmweb exits when it is taken)

    def draw_ports(self) -> None:
        super().draw_ports()
        self.web_port = free_port()

    def command(self) -> list[str]:
        return [str(MITMWEB), *super().command()[1:], "--web-port", str(self.web_port),
                "--set", f"web_password={self.password}", "--no-web-open-browser"]

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def call(self, method: str, path: str, body: object) -> httpx.Response:
        """A call of mitmweb's API as its page makes it (the password, the XSRF token), retried while its web server
        is not up yet (it may start after the proxy); raises for an error status."""
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.request(method, f"{self.web}{path}", json=body, timeout=10, trust_env=False,
                                         headers={"Authorization": f"Bearer {self.password}", "X-XSRFToken": "t"},
                                         cookies={"_mitmproxy_xsrf": "t"})
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        response.raise_for_status()
        return response

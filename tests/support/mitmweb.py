"""The harness's proxy process run as mitmweb: the same addon and config, a web UI behind a password on a port of its
own."""

from __future__ import annotations

from dataclasses import dataclass

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

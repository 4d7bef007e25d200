"""The cloud test kit: the fake platform, a real mitmdump and the clients, all inside one private namespace where the
clouds' real hostnames resolve to 127.0.0.1 (tests/support/cloud_net.py). Nothing in the product knows it is a test:
mitmdump trusts the fake's CA through `upstream_ca` (and mitmproxy's `ssl_verify_upstream_trusted_ca`, which the
traffic mitmproxy passes through itself needs: `upstream_ca` covers only Rotator's own upstream calls), and the
clients reach the real names through HTTPS_PROXY as a user's would, trusting mitmproxy's CA added to the fake's (a
host Rotator tunnels shows them the fake's own certificate, as the real one would its own: `trusted`).

    def test_vertex(cloud, claude_bin, tmp_path):          # fixtures in tests/e2e/conftest.py (skip without root)
        proxy = cloud.rotator()                            # embedded defaults + upstream_ca; cloud.rotator({...}) merges
        cloud.fake.script(vertex_exhausted(), host=VERTEX_EAST)            # faults: tests/support/cloud_faults.py
        seen = cloud.sdk(proxy, "anthropic_vertex", project=PROJECT_A, region="us-east5",
                         credentials=str(cloud.key_file(PROJECT_A)))      # clients: tests/support/cloud_sdk.py
        assert seen["status"] == 429
        assert cloud.fake.at(VERTEX_EAST)[0].path.endswith(":streamRawPredict")

        done = run_claude_vertex(cloud, proxy, claude_bin, tmp_path)     # the real CLIs: tests/support/cloud_agents.py
        assert done.returncode == 0

`cloud.rotator(fresh=True, args=("--save-stream-file", path))` gives a private proxy whose flows
tests/support/flows.py reads back. `cloud.fake` is the platform (tests/support/fake_cloud.py: script, always, at,
wait_for, requests), `cloud.metadata` the GCE metadata server; both are reset around each test. Set up once per
worker: service accounts for PROJECT_A (also the metadata server's) and PROJECT_B with their key files
(`key_file`), and the Azure resources AZURE_A, AZURE_B and FOUNDRY with their keys and deployments (`AZURE_KEYS`,
`DEPLOYMENTS`), AWS keys (`AWS_CLIENT`, `AWS_POOL_A`, `AWS_POOL_B`) and a Bedrock API key; `cloud.accounts` takes more.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.cloud_auth import CloudAccounts, ServiceAccount
from tests.support.cloud_certs import HOSTNAMES, CloudCA
from tests.support.cloud_net import CloudNet
from tests.support.fake_cloud import FakeCloud
from tests.support.harness import (
    ADDON,
    REPO,
    Rotator,
    RotatorPool,
    RotatorProcess,
    clean_environ,
    dies_with_test_run,
    merge,
)

PROJECT_A, PROJECT_B = "proj-a", "proj-b"
VERTEX_EAST, VERTEX_EUROPE, VERTEX_GLOBAL = ("us-east5-aiplatform.googleapis.com",
                                             "europe-west1-aiplatform.googleapis.com", "aiplatform.googleapis.com")
AZURE_A, AZURE_B, FOUNDRY = "res-a.openai.azure.com", "res-b.openai.azure.com", "myres.services.ai.azure.com"
AZURE_KEYS = {AZURE_A: "azure-key-a", AZURE_B: "azure-key-b", FOUNDRY: "foundry-key"}
DEPLOYMENTS = {  # deployment names are per resource; the model each serves is what its answers name
    AZURE_A: {"gpt-4o-deploy": "gpt-4o-2024-11-20", "gpt-5-deploy": "gpt-5-2025-08-07"},
    AZURE_B: {"gpt-4o-eu": "gpt-4o-2024-11-20"},
    FOUNDRY: {"claude-opus-4-6": "claude-opus-4-6"},
}
BEDROCK_EAST, BEDROCK_WEST = "bedrock-runtime.us-east-1.amazonaws.com", "bedrock-runtime.us-west-2.amazonaws.com"
# AWS access key ids and their secrets: a client's own (it signs), and a pool's two (Rotator signs); a Bedrock API key.
AWS_CLIENT = ("AKIDCLIENTFAKE000001", "client-secret-fake-0001")
# A client's temporary credentials (AWS SSO, an assumed role): access key id, secret and session token.
AWS_TEMPORARY = ("ASIATEMPFAKE00000001", "temp-secret-fake-0001", "FAKESESSIONTOKEN/temporary+fake=0001")
AWS_POOL_A = ("AKIDPOOLAFAKE0000001", "pool-secret-fake-a")
AWS_POOL_B = ("AKIDPOOLBFAKE0000001", "pool-secret-fake-b")
BEDROCK_API_KEY = "ABSKfakepoolkey0000000001"


@dataclass
class NamespacedRotator(RotatorProcess):
    """A mitmdump run inside the namespace (its readiness read from its own /proc)."""

    net: CloudNet | None = None

    def command(self) -> list[str]:
        assert self.net is not None
        return self.net.command(super().command(), cwd=REPO)

    def listening(self) -> bool:
        assert self.net is not None
        return self.process is not None and self.net.listens(self.process.pid, self.port)


class NamespacedPool(RotatorPool):
    def __init__(self, base_dir: Path, net: CloudNet) -> None:
        super().__init__(base_dir)
        self.net = net

    def _new(self, config: dict, env: dict, args: tuple, script: str) -> RotatorProcess:
        self._count += 1
        proc = NamespacedRotator(config, self.base_dir / f"rotator-{self._count}", env, args, script, net=self.net)
        return proc.start()


class SdkForks:
    """The fork server of tests/support/cloud_sdk.py, run inside the namespace (started again if it ended)."""

    def __init__(self, net: CloudNet, log_path: Path) -> None:
        self.net, self.log_path = net, log_path
        self.process: subprocess.Popen | None = None
        self._buffer = b""

    def call(self, name: str, options: dict, env: dict[str, str], timeout: float) -> dict:
        if self.process is None or self.process.poll() is not None:
            self.start(env)
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write((json.dumps({"client": name, "options": options, "env": env}) + "\n").encode())
        self.process.stdin.flush()
        pid = self._line(10)["pid"]
        try:
            return self._line(timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._line(10)  # (the server's word that the call's process died)
            raise AssertionError(f"the {name} call was still running after {timeout}s") from None

    def start(self, env: dict[str, str]) -> SdkForks:
        self.stop()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.net.command([sys.executable, "-m", "tests.support.cloud_sdk", "--serve"], REPO),
                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                preexec_fn=dies_with_test_run())
        self._buffer = b""
        if self._line(120) != {"ready": True}:
            raise AssertionError(f"the SDK fork server did not start: {self.log_path.read_text()[-3000:]}")
        return self

    def _line(self, timeout: float) -> dict:
        assert self.process is not None and self.process.stdout is not None
        out = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if select.select([out], [], [], left)[0]:
                chunk = os.read(out, 65536)
                if not chunk:
                    raise AssertionError(f"the SDK fork server ended: {self.log_path.read_text()[-3000:]}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


class CloudKit:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.accounts = CloudAccounts()
        self.service_accounts: dict[str, ServiceAccount] = {}
        self.net = CloudNet(workdir / "net", HOSTNAMES)
        self.ca = CloudCA(workdir / "ca")
        self.servers: list[FakeCloud] = []
        self.pool: NamespacedPool | None = None
        self._sdk = SdkForks(self.net, workdir / "sdk.log")
        self._fresh: list[RotatorProcess] = []

    def start(self) -> CloudKit:
        """The namespace, the platform on 127.0.0.1:443 and the metadata server on :80 inside, the accounts, and
        the SDK fork server. (A failure stops what started.)"""
        try:
            self.net.start()
            self.fake = FakeCloud(self.accounts, tls=self.ca.server_context(), sock=self.net.listen(443)).start()
            self.servers.append(self.fake)
            self.metadata = FakeCloud(self.accounts, sock=self.net.listen(80)).start()
            self.servers.append(self.metadata)
            for project in (PROJECT_A, PROJECT_B):
                self.service_accounts[project] = self.accounts.service_account(project)
                self.service_accounts[project].write(self.key_file(project))
            self.accounts.on_metadata_server(self.service_accounts[PROJECT_A])
            for host, deployments in DEPLOYMENTS.items():
                self.accounts.azure(host, [AZURE_KEYS[host]], deployments)
            for access_key_id, secret in (AWS_CLIENT, AWS_POOL_A, AWS_POOL_B):
                self.accounts.aws(access_key_id, secret)
            self.accounts.aws(*AWS_TEMPORARY)
            self.accounts.bedrock_key(BEDROCK_API_KEY)
            self.pool = NamespacedPool(self.workdir / "rotator", self.net)
            self._sdk.start(self._base_env())
        except BaseException:
            self.stop()
            raise
        return self

    def key_file(self, project: str) -> Path:
        """The JSON key file of the project's service account (its token_uri: the real oauth2.googleapis.com)."""
        return self.workdir / f"sa-{project}.json"

    def rotator(self, overrides: dict | None = None, *, fresh: bool = False, args: tuple[str, ...] = (),
                env: dict | None = None, script: str = ADDON) -> Rotator:
        """A real `mitmdump -s addons/rotator.py` inside the namespace, its config the embedded defaults with
        `upstream_ca` (the fake's CA) and `overrides` merged in. Shared by identical arguments, unless `fresh`
        (then stopped at the end of the test)."""
        assert self.pool is not None, "the kit is not started"
        config = merge({"upstream_ca": str(self.ca.ca_file)}, overrides)
        args = ("--set", f"ssl_verify_upstream_trusted_ca={self.ca.ca_file}", *args)
        if fresh:
            proc = self.pool.fresh(config, env, args, script)
            self._fresh.append(proc)
        else:
            proc = self.pool.get(config, env, args, script)
        return Rotator(proc)

    def trusted(self, proxy: Rotator) -> Path:
        """What a client inside trusts: the proxy's CA and the fake's, as a machine's store holds the real servers'
        roots (Rotator tunnels the hosts no provider claims, oauth2.googleapis.com among them: the client meets the
        fake's own certificate there)."""
        bundle = self.workdir / f"trusted-{proxy.port}.pem"
        bundle.write_bytes(proxy.ca_cert.read_bytes() + self.ca.ca_file.read_bytes())
        return bundle

    def client_env(self, proxy: Rotator, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a client inside: this one without proxy or vendor settings, then HTTPS_PROXY and what
        it trusts (`trusted`) for every kind of client (Python's ssl and requests, Node, curl)."""
        ca = str(self.trusted(proxy))
        return self._base_env() | {"HTTPS_PROXY": proxy.url, "SSL_CERT_FILE": ca, "REQUESTS_CA_BUNDLE": ca,
                                   "NODE_EXTRA_CA_CERTS": ca, "CURL_CA_BUNDLE": ca, "AWS_CA_BUNDLE": ca} | (extra or {})

    @staticmethod
    def _base_env() -> dict[str, str]:
        env = clean_environ({"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))})
        for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST", "GCE_METADATA_IP", "CLOUD_ML_REGION",
                     "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
                     "AWS_DEFAULT_REGION", "AWS_BEARER_TOKEN_BEDROCK"):
            env.pop(name, None)
        return env

    def sdk(self, proxy: Rotator, name: str, timeout: float = 60, **options: object) -> dict:
        """One call of an SDK client (tests/support/cloud_sdk.py) made inside, through `proxy`: what it saw. (A fork
        of one process that imported the SDKs once: a call costs its own time, not the SDKs' two seconds of import.)"""
        return self._sdk.call(name, options, self.client_env(proxy), timeout)

    def reset(self) -> None:
        for server in self.servers:
            server.reset()

    def end_test(self) -> None:
        """Stop the test's fresh proxies and forget what the platform saw."""
        while self._fresh:
            self._fresh.pop().stop()
        self.reset()

    def stop(self) -> None:
        self.end_test()
        self._sdk.stop()
        if self.pool is not None:
            self.pool.close()
        while self.servers:
            self.servers.pop().stop()
        self.net.stop()

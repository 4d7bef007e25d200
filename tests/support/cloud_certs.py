"""The TLS identity of the fake cloud platform (tests/support/fake_cloud.py): a CA the test makes, and one server
certificate naming every real hostname the fake answers for. mitmdump trusts the CA through `upstream_ca` (and
mitmproxy's `ssl_verify_upstream_trusted_ca` for the traffic it passes through itself); no client ever sees it.

    ca = CloudCA(tmp_path)
    server = FakeCloud(tls=ca.server_context(), sock=...)
    ca.ca_file   # PEM, for upstream_ca
"""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from mitmproxy.certs import CertStore

VERTEX_REGIONS = ("us-east5", "us-central1", "europe-west1", "europe-west4", "asia-northeast1")
VERTEX_HOSTS = (
    *(f"{region}-aiplatform.googleapis.com" for region in VERTEX_REGIONS),
    "aiplatform.googleapis.com",  # the global endpoint
    "aiplatform.us.rep.googleapis.com",  # the multi-region ones
    "aiplatform.eu.rep.googleapis.com",
)
GOOGLE_OAUTH_HOST = "oauth2.googleapis.com"
METADATA_HOST = "metadata.google.internal"  # plain HTTP on port 80: the GCE metadata server
AZURE_HOSTS = (
    "res-a.openai.azure.com",
    "res-b.openai.azure.com",
    "myres.openai.azure.com",
    "myres.cognitiveservices.azure.com",
    "myres.services.ai.azure.com",
)
BEDROCK_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
BEDROCK_HOSTS = (  # the runtime, and the control plane (Claude Code lists the inference profiles there)
    *(f"bedrock-runtime.{region}.amazonaws.com" for region in BEDROCK_REGIONS),
    *(f"bedrock.{region}.amazonaws.com" for region in BEDROCK_REGIONS),
)
# The vendors' own APIs, served as the fake vendor serves them (a route from a platform to a vendor lands here).
VENDOR_HOSTS = ("api.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com")
# Cloud Code: Antigravity's hosts and the production one it shares with Gemini CLI (answered in the Code Assist
# dialect of tests/support/login_dialects.py).
CLOUD_CODE_HOSTS = ("daily-cloudcode-pa.sandbox.googleapis.com", "daily-cloudcode-pa.googleapis.com",
                    "autopush-cloudcode-pa.sandbox.googleapis.com", "cloudcode-pa.googleapis.com")
TLS_HOSTS = (*VERTEX_HOSTS, GOOGLE_OAUTH_HOST, *AZURE_HOSTS, *BEDROCK_HOSTS, *VENDOR_HOSTS, *CLOUD_CODE_HOSTS)
HOSTNAMES = (*TLS_HOSTS, METADATA_HOST)  # every name the private /etc/hosts maps to 127.0.0.1


class CloudCA:
    """A CA of the test's own (mitmproxy's certificate utilities) and the fake platform's server certificate."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self._store = CertStore.from_store(workdir, "fake-cloud", 2048)
        self.ca_file = workdir / "fake-cloud-ca-cert.pem"

    def server_context(self, hostnames: tuple[str, ...] = TLS_HOSTS) -> ssl.SSLContext:
        """A server-side TLS context whose certificate names all of `hostnames` (HTTP/1.1 only)."""
        entry = self._store.get_cert(hostnames[0], [x509.DNSName(name) for name in hostnames])
        chain = self.workdir / "fake-cloud-server.pem"
        key = entry.privatekey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                             serialization.NoEncryption())
        chain.write_bytes(entry.cert.to_pem() + key)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(chain)
        context.set_alpn_protocols(["http/1.1"])
        return context

"""Who may call the fake cloud platform (tests/support/fake_cloud.py): Google service accounts and the tokens minted
for them, Vertex express API keys, and Azure resources with their keys and deployments.

- **Google OAuth** (`POST https://oauth2.googleapis.com/token`, grant type jwt-bearer): the assertion's RS256
  signature is checked against the public key of the service account it names (`iss`, `kid`), its audience and
  expiry too; the access token minted (`ya29.…`, one hour) belongs to that account's project.
- **The GCE metadata server** (`http://metadata.google.internal/computeMetadata/v1/…`, `Metadata-Flavor: Google`)
  mints tokens for the account chosen with `on_metadata_server` (how Claude Code and Gemini CLI get theirs with ADC).
- **Vertex** takes `Authorization: Bearer <minted token>` for the project in the path (another project: 403
  PERMISSION_DENIED), or an express API key (`x-goog-api-key`) on the project-less paths only.
- **Azure** takes `api-key: <key>` or `Authorization: Bearer <key or Entra token>` (Foundry's Anthropic path also
  `x-api-key`), each resource host its own keys, and its own deployment names.
- **AWS** (Bedrock: tests/support/fake_bedrock.py) takes a SigV4 signature of a known access key id, checked with
  its secret (and its session token, for temporary keys), or `Authorization: Bearer <a Bedrock API key>`.

    accounts = CloudAccounts()
    sa = accounts.service_account("proj-a")            # sa.write(path): the JSON key file, token_uri at the real host
    accounts.azure("res-a.openai.azure.com", keys=["k-a"], deployments={"gpt-4o-deploy": "gpt-4o-2024-11-20"})
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
TOKEN_LIFETIME = 3600


@dataclass
class ServiceAccount:
    """A Google service account with a generated RSA key."""

    project: str
    email: str
    key_id: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    def info(self) -> dict:
        """The JSON key file's contents, as the Cloud console gives it."""
        pem = self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": self.project, "private_key_id": self.key_id,
                "private_key": pem, "client_email": self.email, "client_id": str(abs(hash(self.email)) % 10**20),
                "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": TOKEN_URI,
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "universe_domain": "googleapis.com"}

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.info(), indent=2))
        return path


@dataclass(frozen=True)
class Grant:
    """An access token the fake minted."""

    token: str
    email: str
    project: str
    expires_at: float
    via: str  # "oauth2" (a signed assertion) or "metadata"


@dataclass
class AzureResource:
    host: str
    keys: set[str]
    deployments: dict[str, str]  # deployment name -> the model it serves (what answers name in `model`)


class CloudAccounts:
    """The platform's identities, shared by its servers (the TLS one and the metadata server); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, ServiceAccount] = {}  # by email
        self._grants: dict[str, Grant] = {}  # by token
        self._express: dict[str, str] = {}  # Vertex express API key -> project
        self._resources: dict[str, AzureResource] = {}  # by host
        self._metadata_account: str | None = None
        self._numbers = itertools.count(1)
        self._aws: dict[str, tuple[str, str | None]] = {}  # access key id -> (secret, session token)
        self._bedrock_keys: set[str] = set()  # Bedrock API keys
        self._google_logins: dict[str, str] = {}  # a Google login's refresh token -> its OAuth client id

    # --- setting up

    def service_account(self, project: str, name: str = "rotator-test") -> ServiceAccount:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        account = ServiceAccount(project, f"{name}@{project}.iam.gserviceaccount.com", secrets.token_hex(20), key)
        with self._lock:
            self._accounts[account.email] = account
        return account

    def on_metadata_server(self, account: ServiceAccount) -> None:
        """The account the metadata server mints tokens for (the VM's default service account)."""
        with self._lock:
            self._metadata_account = account.email

    def express_key(self, key: str, project: str) -> None:
        with self._lock:
            self._express[key] = project

    def azure(self, host: str, keys: list[str], deployments: dict[str, str]) -> AzureResource:
        resource = AzureResource(host, set(keys), dict(deployments))
        with self._lock:
            self._resources[host] = resource
        return resource

    def aws(self, access_key_id: str, secret_access_key: str, session_token: str | None = None) -> None:
        with self._lock:
            self._aws[access_key_id] = (secret_access_key, session_token)

    def bedrock_key(self, key: str) -> None:
        with self._lock:
            self._bedrock_keys.add(key)

    def aws_secrets(self) -> dict[str, tuple[str, str | None]]:
        with self._lock:
            return dict(self._aws)

    def takes_bedrock_key(self, key: str) -> bool:
        with self._lock:
            return key in self._bedrock_keys

    def mint(self, account: ServiceAccount, via: str = "test", lifetime: float = TOKEN_LIFETIME) -> Grant:
        """A token for `account`, as the token endpoint would give it (for a test that calls Vertex itself)."""
        grant = Grant(f"ya29.c.fake{next(self._numbers)}{secrets.token_urlsafe(12)}", account.email, account.project,
                      time.time() + lifetime, via)
        with self._lock:
            self._grants[grant.token] = grant
        return grant

    # --- what the servers ask

    def grant(self, token: str) -> Grant | None:
        """The live grant of an access token, or None (unknown or expired)."""
        with self._lock:
            grant = self._grants.get(token)
        return grant if grant is not None and grant.expires_at > time.time() else None

    def grants(self) -> list[Grant]:
        with self._lock:
            return list(self._grants.values())

    def express_project(self, key: str) -> str | None:
        with self._lock:
            return self._express.get(key)

    def resource(self, host: str) -> AzureResource | None:
        with self._lock:
            return self._resources.get(host)

    def google_login(self, refresh_token: str, client_id: str) -> None:
        """A user's Google login (an installed app's OAuth client): its refresh token is granted access tokens."""
        with self._lock:
            self._google_logins[refresh_token] = client_id

    def token_endpoint(self, raw_body: bytes) -> tuple[int, dict]:
        """`POST /token` of oauth2.googleapis.com: a jwt-bearer grant checked and answered; a Google login's
        refresh grant too."""
        form = dict(parse_qsl(raw_body.decode("latin-1")))
        if form.get("grant_type") == "refresh_token":
            with self._lock:
                client = self._google_logins.get(form.get("refresh_token", ""))
                if client is None or client != form.get("client_id"):
                    return 400, {"error": "invalid_grant", "error_description": "Bad Request"}
                token = f"ya29.fake-google-login-{next(self._numbers)}"
            return 200, {"access_token": token, "expires_in": TOKEN_LIFETIME - 1, "token_type": "Bearer",
                         "scope": "https://www.googleapis.com/auth/cloud-platform"}
        if form.get("grant_type") != JWT_BEARER:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: "
                         + form.get("grant_type", "")}
        problem, account = self._check_assertion(form.get("assertion", ""))
        if account is None:
            return 400, {"error": "invalid_grant", "error_description": problem}
        grant = self.mint(account, "oauth2")
        return 200, {"access_token": grant.token, "expires_in": TOKEN_LIFETIME - 1, "token_type": "Bearer"}

    def _check_assertion(self, assertion: str) -> tuple[str, ServiceAccount | None]:
        try:
            head_b64, claims_b64, signature_b64 = assertion.split(".")
            header, claims = json.loads(_unb64(head_b64)), json.loads(_unb64(claims_b64))
            signature = _unb64(signature_b64)
        except ValueError:
            return "Invalid JWT: could not be parsed.", None
        with self._lock:
            account = self._accounts.get(str(claims.get("iss")))
        if header.get("alg") != "RS256" or account is None:
            return "Invalid JWT: no such service account.", None
        if header.get("kid") not in (None, account.key_id):
            return "Invalid JWT Signature.", None  # (a key of the account that was deleted, or another's)
        try:
            account.private_key.public_key().verify(signature, f"{head_b64}.{claims_b64}".encode(),
                                                    padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "Invalid JWT Signature.", None
        if claims.get("aud") != TOKEN_URI:
            return "Invalid JWT: Failed audience check.", None
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.", None
        if CLOUD_PLATFORM_SCOPE not in str(claims.get("scope", "")).split():
            return "Invalid JWT: the scope does not include cloud-platform.", None
        return "", account

    def metadata(self, path: str, headers: dict[str, str]) -> tuple[int, str | dict]:
        """The GCE metadata server's answer to a GET of `path`."""
        if headers.get("metadata-flavor", "").lower() != "google":
            return 403, "Missing required header: Metadata-Flavor"
        with self._lock:
            account = self._accounts.get(self._metadata_account or "")
        if account is None:
            return 404, "no default service account on this instance"
        relative = path.removeprefix("/computeMetadata/v1").rstrip("/")
        if relative in ("", "/instance", "/instance/service-accounts", "/project"):
            return 200, "attributes/\nhostname\nid\nservice-accounts/\nzone\n"
        if relative == "/instance/service-accounts/default":  # (google-auth reads it with ?recursive=true)
            return 200, {"aliases": ["default"], "email": account.email, "scopes": [CLOUD_PLATFORM_SCOPE]}
        if relative.endswith("/token") and relative.startswith("/instance/service-accounts/"):
            grant = self.mint(account, "metadata")
            return 200, {"access_token": grant.token, "expires_in": TOKEN_LIFETIME - 1, "token_type": "Bearer"}
        answers = {"/project/project-id": account.project, "/project/numeric-project-id": "123456789012",
                   "/instance/service-accounts/default/email": account.email,
                   "/instance/service-accounts/default/scopes": CLOUD_PLATFORM_SCOPE,
                   "/instance/zone": "projects/123456789012/zones/us-central1-a", "/instance/id": "4242424242"}
        return (200, answers[relative]) if relative in answers else (404, "Not Found")


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

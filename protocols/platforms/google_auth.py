"""A Google service account's access tokens, as google-auth mints them (OAuth 2.0's JWT bearer grant): the JSON key
file read, the assertion signed (RS256, the account's private key), the token endpoint's answer read. Pure: the
engine sends the request (through its egress proxy) and keeps the tokens (rewrite/plugins/payers/vertex.py).

    POST {token_uri}   grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>
    -> {"access_token": "ya29.…", "expires_in": 3599, "token_type": "Bearer"}

A token lasts about an hour; it is minted again before it ends (`REFRESH_BEFORE`), and after a 401 that says the
platform no longer takes it.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
ASSERTION_LIFETIME = 3600  # seconds: Google takes an assertion of an hour at most
REFRESH_BEFORE = 300.0  # seconds before its end a token is minted again
FORM = "application/x-www-form-urlencoded"
REQUIRED = ("type", "project_id", "private_key", "client_email", "token_uri")


class ServiceAccountError(ValueError):
    """A key file that cannot be used, or a token the endpoint would not give; one line (never a secret)."""


@dataclass(frozen=True)
class ServiceAccount:
    """A service account, as its JSON key file says."""

    project: str
    email: str
    key_id: str  # its private key's id: how the pools name the account
    token_uri: str
    private_key: Any = field(repr=False, compare=False)  # the loaded RSA key (never shown)


def service_account(text: str) -> ServiceAccount:
    """The account a JSON key file (its text) describes. ServiceAccountError: not one."""
    try:
        info = json.loads(text)
    except (ValueError, RecursionError):
        raise ServiceAccountError("is not JSON") from None
    if not isinstance(info, dict):
        raise ServiceAccountError("is not a JSON object")
    missing = [k for k in REQUIRED if not isinstance(info.get(k), str) or not info[k]]
    if missing:
        raise ServiceAccountError(f"has no {missing[0]}: not a service account key file")
    if info["type"] != "service_account":
        raise ServiceAccountError(f"is a key file of type {info['type'][:40]!r}, not a service_account one")
    if urlsplit(info["token_uri"]).scheme != "https":
        raise ServiceAccountError("names a token_uri that is not https")
    try:
        key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    except (ValueError, TypeError):
        raise ServiceAccountError("holds a private_key that is not a PEM RSA key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ServiceAccountError("holds a private_key that is not an RSA key")
    key_id = info.get("private_key_id")
    return ServiceAccount(info["project_id"], info["client_email"], key_id if isinstance(key_id, str) and key_id
                          else info["client_email"], info["token_uri"], key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion(account: ServiceAccount, now: float, scope: str = CLOUD_PLATFORM) -> str:
    """The signed JWT that asks `account`'s token endpoint for a token of `scope`."""
    header = {"alg": "RS256", "typ": "JWT", "kid": account.key_id}
    issued = int(now)
    claims = {"iss": account.email, "scope": scope, "aud": account.token_uri, "iat": issued,
              "exp": issued + ASSERTION_LIFETIME}
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = account.private_key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing}.{_b64(signature)}"


def token_request(account: ServiceAccount, now: float) -> tuple[str, list[tuple[str, str]], bytes]:
    """(url, headers, body) of the request that mints a token for `account`."""
    body = urlencode({"grant_type": JWT_BEARER, "assertion": assertion(account, now)}).encode()
    return account.token_uri, [("content-type", FORM), ("accept", "application/json")], body


@dataclass(frozen=True)
class Minted:
    token: str = field(repr=False)
    expires_at: float  # epoch seconds


def token_answer(status: int, body: bytes, now: float) -> Minted:
    """The token the endpoint's answer gives. ServiceAccountError (one line, in the endpoint's words) if none."""
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        answer = None
    if not isinstance(answer, dict):
        raise ServiceAccountError(f"the token endpoint answered {status} without JSON")
    token, lasts = answer.get("access_token"), answer.get("expires_in")
    if status != 200 or not isinstance(token, str) or not token:
        said = answer.get("error_description") or answer.get("error") or "no access_token"
        raise ServiceAccountError(f"the token endpoint answered {status}: {str(said)[:200]}")
    seconds = float(lasts) if isinstance(lasts, (int, float)) and math.isfinite(lasts) and lasts > 0 else 3600.0
    return Minted(token, now + seconds)


def fresh(minted: Minted | None, now: float) -> bool:
    """Whether a token may still be used (it has more than REFRESH_BEFORE seconds left)."""
    return minted is not None and minted.expires_at - now > REFRESH_BEFORE

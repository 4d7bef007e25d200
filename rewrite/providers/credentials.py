"""How each protocol family carries a credential (each protocol's registration describes it); the key pools
themselves are in rewrite/pool/."""

from __future__ import annotations

from protocols.families import CredentialStyle
from protocols.registry import credential, families
from rewrite.pool import mask  # noqa: F401  (its old home, which plug-ins' tests import it from)

# The style of each family, as registered (protocols/registration.py; registrations are made when `protocols` is
# imported, before this module).
CREDENTIAL_STYLES: dict[str, CredentialStyle] = {family: credential(family) for family in families()}

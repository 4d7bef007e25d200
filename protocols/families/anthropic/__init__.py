"""Anthropic's family: how its providers take a key, its error reader (errors.py), its rate-limit windows
(windows.py) and its models (models.py)."""

from protocols.families import CredentialStyle, Family
from protocols.families.anthropic.errors import ANTHROPIC_ERRORS
from protocols.families.anthropic.models import CACHE_MINIMUMS, MODELS, UNKNOWN
from protocols.families.anthropic.windows import ANTHROPIC_WINDOWS

NAME = "anthropic"
# The SDK's `workspace_id` and `user_profile_id` (its `anthropic-workspace-id`, `anthropic-user-profile-id` headers)
# name a workspace and a user profile of the client's own organization.
CREDENTIAL = CredentialStyle("x-api-key", "{}", ("x-api-key", "authorization"),
                             account_headers=("anthropic-workspace-id", "anthropic-user-profile-id", "cookie"))

FAMILY = Family(NAME, CREDENTIAL, errors=ANTHROPIC_ERRORS, windows=ANTHROPIC_WINDOWS, models=MODELS, unknown=UNKNOWN,
                cache_minimums=CACHE_MINIMUMS)

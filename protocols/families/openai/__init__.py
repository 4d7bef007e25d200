"""OpenAI's family, for both of its protocols (Chat Completions and Responses) and the OpenAI-compatible vendors: how
its providers take a key (Azure-style `api-key` too), its error reader (errors.py), its rate-limit windows
(windows.py), its models (models.py), and what both protocols' conversations say alike (conversation.py)."""

from protocols.families import CredentialStyle, Family
from protocols.families.openai.errors import OPENAI_ERRORS
from protocols.families.openai.models import CACHE_MINIMUMS, MODELS, UNKNOWN
from protocols.families.openai.windows import OPENAI_WINDOWS

NAME = "openai"
CREDENTIAL = CredentialStyle(
    "authorization", "Bearer {}", ("authorization", "api-key"),
    account_headers=("openai-organization", "openai-project", "cookie"),
    account_fields=(("organization", "OpenAI-Organization"), ("project", "OpenAI-Project")),
)

FAMILY = Family(NAME, CREDENTIAL, errors=OPENAI_ERRORS, windows=OPENAI_WINDOWS, models=MODELS, unknown=UNKNOWN,
                cache_minimums=CACHE_MINIMUMS)

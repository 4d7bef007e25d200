"""Google's Gemini API family: how its providers take a key (the `key` query parameter too), its error reader
(errors.py, on Google's RPC details: protocols/families/google_rpc.py), its quota windows (windows.py) and its
models (models.py)."""

from protocols.families import CredentialStyle, Family
from protocols.families.gemini.errors import GEMINI_ERRORS
from protocols.families.gemini.models import CACHE_MINIMUMS, MODELS, UNKNOWN
from protocols.families.gemini.windows import GEMINI_WINDOWS

NAME = "gemini"
CREDENTIAL = CredentialStyle(
    "x-goog-api-key", "{}", ("x-goog-api-key", "authorization"), client_query="key",
    account_headers=("x-goog-user-project", "cookie"),
)

FAMILY = Family(NAME, CREDENTIAL, errors=GEMINI_ERRORS, windows=GEMINI_WINDOWS, models=MODELS, unknown=UNKNOWN,
                cache_minimums=CACHE_MINIMUMS)

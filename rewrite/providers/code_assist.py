"""Gemini CLI on Code Assist (protocols/logins/code_assist.py): Gemini in Code Assist's envelope at
`cloudcode-pa.googleapis.com/v1internal:generateContent` and `:streamGenerateContent` (`countTokens` forwarded on the
login as it came); every other method (`loadCodeAssist`, `onboardUser`, `retrieveUserQuota`, ...) passes
untouched."""

from protocols.families import CredentialStyle
from protocols.logins import code_assist as wire
from rewrite.providers import ProviderSpec, register
from rewrite.providers.login import Login

LOGIN = Login(
    paths=wire.GENERATION,
    families=("gemini",),
    credential=CredentialStyle("authorization", "Bearer {}", ("authorization",)),
    claims=wire.claims,
    errors=(wire.exhausted,),
    windows=(wire.windows,),
    foreign_body=wire.foreign_body,
    side_hosts=("oauth2.googleapis.com", "www.googleapis.com"),  # (token info, user info)
    envelope=wire.ENVELOPE,
    forwarded=wire.COUNT_TOKENS,
    client_error=wire.bounded_delay,
)

register(ProviderSpec("code_assist", "gemini", ("cloudcode-pa.googleapis.com",), "https://cloudcode-pa.googleapis.com",
                      "", login=LOGIN))

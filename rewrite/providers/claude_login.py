"""Claude Code on a Pro/Max plan (protocols/logins/claude_login.py): Anthropic Messages on api.anthropic.com, told
from API-key traffic by its OAuth credential. Its signed body goes byte for byte."""

import re

from protocols.families import CredentialStyle
from protocols.logins import claude_login as wire
from rewrite.providers import ProviderSpec, register
from rewrite.providers.login import Login

LOGIN = Login(
    paths=re.compile(r"/v1/messages"),
    families=("anthropic",),
    credential=CredentialStyle("authorization", "Bearer {}", ("authorization", "x-api-key"),
                               account_headers=("cookie",)),
    claims=wire.claims,
    signed=wire.signed,
    errors=(wire.exhausted,),
    windows=(wire.windows,),
    foreign=wire.foreign_headers,
)

register(ProviderSpec("claude_login", "anthropic", ("api.anthropic.com",), "https://api.anthropic.com", "",
                      login=LOGIN))

"""The Copilot CLI's GitHub login (protocols/logins/copilot.py): the API host its plan names, where the protocol
follows the path (Responses, Chat Completions, Anthropic Messages); `/models` and every other path pass untouched.
Every request to these hosts carries the login (the default `claims`).
Requests go to the host the client called unless `base_url` is set."""

import re

from protocols.families import CredentialStyle
from protocols.logins import copilot as wire
from rewrite.providers import ProviderSpec, register
from rewrite.providers.login import Login

LOGIN = Login(
    paths=re.compile(r"/(?:responses|chat/completions|v1/messages)"),
    families=("openai", "anthropic"),
    credential=CredentialStyle("authorization", "Bearer {}", ("authorization",)),
    errors=(wire.exhausted,),
    windows=(wire.windows,),
    side_hosts=("api.github.com",),  # (copilot_internal/user names the API host and the plan)
)

register(ProviderSpec("copilot", "openai", ("api.githubcopilot.com", "api.*.githubcopilot.com"), "", "",
                      login=LOGIN))

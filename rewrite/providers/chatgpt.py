"""Codex CLI logged in with ChatGPT (protocols/logins/chatgpt.py): OpenAI Responses at
`chatgpt.com/backend-api/codex/responses`, HTTPS POST only (its WebSocket upgrade is answered as Responses upgrades
are: addons/websocket.py); every other path of the host (`/backend-api/codex/models`, analytics, `wham/*`, the web
app) passes untouched. Requests go to the host the client called, under the Codex backend's path, unless `base_url`
is set: a workspace whose data stays in a region or on FedRAMP has its own origin, which `hosts` then names."""

import re

from protocols.families import CredentialStyle
from protocols.logins import chatgpt as wire
from rewrite.providers import ProviderSpec, register
from rewrite.providers.login import Login

LOGIN = Login(
    paths=re.compile(r"/backend-api/codex/responses"),
    families=("openai",),
    credential=CredentialStyle("authorization", "Bearer {}", ("authorization",)),
    claims=wire.claims,
    errors=(wire.exhausted,),
    windows=(wire.windows,),
    foreign=wire.foreign_headers,
    foreign_body=wire.public_body,
    window_events=frozenset({wire.RATE_LIMITS_EVENT}),
    lookups=wire.LOOKUPS,
    lookup=wire.reset_credits,
)

register(ProviderSpec("chatgpt", "openai", ("chatgpt.com",), "", "/backend-api/codex", login=LOGIN))

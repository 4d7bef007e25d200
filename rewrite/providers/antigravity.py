"""Antigravity on Cloud Code (protocols/logins/antigravity.py): Gemini in Code Assist's envelope at its own hosts and,
told apart from Gemini CLI's by what the request says, at `cloudcode-pa.googleapis.com`; its plan's per-model quota
read from the client's own look-ups. Requests go to the host the client called."""

from protocols.families import CredentialStyle
from protocols.logins import antigravity as wire
from protocols.logins import code_assist
from rewrite.providers import ProviderSpec, register
from rewrite.providers.login import Login

LOGIN = Login(
    paths=code_assist.GENERATION,
    families=(code_assist.PROTOCOL,),
    credential=CredentialStyle("authorization", "Bearer {}", ("authorization",)),
    claims=code_assist.claims,
    owns=wire.owns,
    shared_hosts=(wire.SHARED_HOST,),
    errors=(code_assist.exhausted,),
    windows=(code_assist.windows,),
    foreign_body=wire.foreign_body,
    foreign_model=wire.foreign_model,
    side_hosts=("oauth2.googleapis.com", "www.googleapis.com"),
    envelope=code_assist.ENVELOPE,
    forwarded=code_assist.COUNT_TOKENS,
    client_error=code_assist.bounded_delay,
    lookups=wire.LOOKUPS,
    lookup=wire.plan_lookup,
)

register(ProviderSpec("antigravity", code_assist.PROTOCOL, wire.HOSTS, "", "", login=LOGIN))

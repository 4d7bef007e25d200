"""The engine as the mitmproxy addons (addons/) see it: everything of rewrite/ they may use, and nothing else.

An import contract (pyproject.toml) holds addons/ to this module: what an addon needs of the engine that is not here
is either the engine's work (then it goes behind the `Engine`) or a name to add here. Two imports stand outside it:
the composition root, addons/rotator.py, registers the built-in plug-ins (`rewrite.plugins`), which the engine
itself must not know; and addons/handoff.py reaches mitmproxy's internals through rewrite/internals.py, the one
module that lists every private access, which is no part of the engine's surface.
"""

from rewrite.accounting.client_book import SCOPE as CLIENTS_SCOPE
from rewrite.accounting.client_book import ClientBook, book_of
from rewrite.accounting.client_metrics import ClientMetrics
from rewrite.accounting.client_rules import client_budgets
from rewrite.accounting.metrics import Metrics, Tally
from rewrite.config import DEFAULT_PATH, ConfigError, load, source
from rewrite.conversation.plugin import blocking_reads_of
from rewrite.engine import Engine
from rewrite.exchange.job import Job, refusal_body
from rewrite.inspection.clients import client_table
from rewrite.inspection.flow_list import summary
from rewrite.inspection.status import Flight, page, render_json, render_text
from rewrite.inspection.status_page import render_html
from rewrite.inspection.views import Facts, render_request, render_response
from rewrite.intake.clients import (
    NO_MATCH,
    SEVERAL,
    ClientKeys,
    ClientKeyVerdict,
    Guesses,
    HeldCredential,
    check,
    check_proxy,
    hide,
    presented,
    without_query_key,
)
from rewrite.intake.loopback import AFTER_ANSWER, JOB_HEADER, LAST_CHUNK
from rewrite.intake.loopback_request import BIG_BODY, LoopbackRequest
from rewrite.intake.whole import WholeAnswer
from rewrite.policy.outcomes import Note
from rewrite.pool.logins import login_table
from rewrite.pool.report import describe as describe_pool
from rewrite.pool.report import table as pool_table
from rewrite.providers import Provider
from rewrite.providers.credentials import CREDENTIAL_STYLES, CredentialStyle
from rewrite.state.records import StateError
from rewrite.upstream.egress import EgressProxy

__all__ = [
    # The engine, its configuration, and the errors its set-up raises
    "DEFAULT_PATH", "ConfigError", "EgressProxy", "Engine", "StateError", "load", "source",
    # What the engine tells of a flow (the job, its notes, the provider that served it) and the flow's comment
    "Job", "Note", "Provider", "summary",
    # The hand-off to the loopback server, and a whole answer's in the flow itself
    "AFTER_ANSWER", "BIG_BODY", "JOB_HEADER", "LAST_CHUNK", "LoopbackRequest", "WholeAnswer",
    # Credentials and client keys, as a request carries them; Rotator's own refusals
    "CREDENTIAL_STYLES", "NO_MATCH", "SEVERAL", "ClientKeys", "CredentialStyle", "Guesses", "HeldCredential",
    "ClientKeyVerdict", "check", "check_proxy", "hide", "presented", "refusal_body", "without_query_key",
    # What a person reads: the LLM view, the status page and its metrics, the pools' table
    "Facts", "Flight", "Metrics", "Tally", "describe_pool", "login_table", "page", "pool_table", "render_html",
    "render_json", "render_request", "render_response", "render_text", "blocking_reads_of",
    # Who spent what: each client's book, its table and metrics, and its records in the state file
    "CLIENTS_SCOPE", "ClientBook", "ClientMetrics", "book_of", "client_budgets", "client_table",
]

"""Rotator: a transparent reliability layer for LLM API traffic.

Run: mitmdump -s addons/rotator.py [--set rotator_config=PATH]
"""

import logging
import sys
from pathlib import Path

# The checkout beside this script is what runs, installed (scripts/setup) or not: another checkout's editable install
# (a second clone, a git worktree) would otherwise serve its own `rewrite` under this script's name.
_checkout = str(Path(__file__).resolve().parent.parent)
if _checkout not in sys.path:
    sys.path.insert(0, _checkout)

import rewrite.plugins  # noqa: F401  (registers the built-in plug-ins, in order, before the engine makes them)
from addons.access import Access
from addons.clients import ProxyClients
from addons.collector import FrozenStartup
from addons.config import RotatorConfig
from addons.dispatch import HandlersOnly
from addons.egress import Egress
from addons.exposure import Exposure
from addons.handoff import Handoff
from addons.interception import Interception
from addons.masking import MaskOnArrival
from addons.memory import GiveBackWhenIdle
from addons.pools import Pools
from addons.scope import Scope
from addons.sharing import Sharing
from addons.spending import Spending
from addons.status import Status
from addons.views import Views
from addons.websocket import WebSocketUpstream
from addons.welcome import Welcome
from rewrite.surface import Engine, Guesses

# httpx logs every request URL at INFO; a URL can carry a client's `?key=`.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

engine = Engine()
websocket = WebSocketUpstream(engine)  # (its upgrades handed to it by Interception)
spending = Spending(engine)  # (the status page reads its book too)
guesses = Guesses()  # failed client-key attempts per address: the pools' gate and the status page count together
proxy_clients = ProxyClients(engine, guesses)  # (the gate asks it who a request's proxy credentials name)
# Order matters: the config is loaded before Egress, Exposure and Access read it; MaskOnArrival gives the real
# credential back just before Access reads it; ProxyClients answers a wrong CONNECT with 407, and Access has it name
# a request's client by its proxy credentials before it gates the request; Access refuses a request before
# Interception hands it to the engine (a WebSocket upgrade to WebSocketUpstream). Spending has the store keep the
# clients' book after Pools opened it.
addons = [RotatorConfig(engine), Scope(engine), Pools(engine), spending, Sharing(engine), Egress(engine),
          Exposure(engine), MaskOnArrival(engine), proxy_clients, Access(engine, guesses, proxy_clients), websocket,
          Interception(engine, websocket), Handoff(engine), Status(engine, guesses, spending.rows, spending.budgets),
          Views(engine), Welcome(engine), HandlersOnly(),
          FrozenStartup(),  # what the others set up when running is frozen too
          GiveBackWhenIdle(engine)]  # last: the memory start-up left is the floor it gives back to

"""Rotator: a transparent reliability layer for LLM API traffic.

Run: mitmdump -s addons/rotator.py [--set rotator_config=PATH]
"""

import logging
import sys
from pathlib import Path

try:
    import rewrite  # noqa: F401  (installed by scripts/setup)
except ImportError:  # run from a checkout with the dependencies but without the editable install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from addons.access import Access  # noqa: E402
from addons.collector import FrozenStartup  # noqa: E402
from addons.config import RotatorConfig  # noqa: E402
from addons.egress import Egress  # noqa: E402
from addons.exposure import Exposure  # noqa: E402
from addons.handoff import Handoff  # noqa: E402
from addons.interception import Interception  # noqa: E402
from addons.masking import MaskOnArrival  # noqa: E402
from addons.pools import Pools  # noqa: E402
from addons.status import Status  # noqa: E402
from addons.views import Views  # noqa: E402
from addons.websocket import WebSocketUpstream  # noqa: E402
from addons.welcome import Welcome  # noqa: E402
from rewrite.clients import Guesses  # noqa: E402
from rewrite.engine import Engine  # noqa: E402

# httpx logs every request URL at INFO; a URL can carry a client's `?key=`.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

engine = Engine()
guesses = Guesses()  # failed client-key attempts per address: the pools' gate and the status page count together
# Order matters: the config is loaded before Egress, Exposure and Access read it; MaskOnArrival gives the real
# credential back just before Access reads it; and Access refuses a request before WebSocketUpstream or
# Interception hand it to the engine.
addons = [RotatorConfig(engine), Pools(engine), Egress(engine), Exposure(engine), MaskOnArrival(engine),
          Access(engine, guesses), WebSocketUpstream(engine), Interception(engine), Handoff(engine),
          Status(engine, guesses),
          Views(engine), Welcome(engine), FrozenStartup()]  # last: what the others set up when running is frozen too

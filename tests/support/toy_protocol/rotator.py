"""addons/rotator.py with the toy protocol registered first: `mitmdump -s tests/support/toy_protocol/rotator.py`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the checkout, for `tests.support`

import protocols  # noqa: E402  (after the checkout is on sys.path)
from tests.support.toy_protocol import REGISTRATION  # noqa: E402  (likewise)

protocols.register(REGISTRATION)

from addons.rotator import addons  # noqa: E402,F401  (after the registration; mitmproxy loads the addons named here)

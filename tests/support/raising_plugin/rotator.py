"""addons/rotator.py with a plug-in of the tests that raises in every observing hook registered first:
`mitmdump -s tests/support/raising_plugin/rotator.py`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the checkout, for `tests.support`

from rewrite.lifecycle.hooks import register  # noqa: E402  (after the checkout is on sys.path)
from tests.support.raising_plugin import AlwaysRaising  # noqa: E402  (likewise)

register(AlwaysRaising)

from addons.rotator import addons  # noqa: E402,F401  (mitmproxy loads the addons named here)

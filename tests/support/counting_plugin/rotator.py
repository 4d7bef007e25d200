"""addons/rotator.py with a plug-in of the tests registered too: `mitmdump -s tests/support/counting_plugin/rotator.py`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the checkout, for `tests.support`

from rewrite.lifecycle.hooks import register  # noqa: E402  (after the checkout is on sys.path)
from tests.support.counting_plugin import AnswersPerKey  # noqa: E402  (likewise)

register(AnswersPerKey)

from addons.rotator import addons  # noqa: E402,F401  (mitmproxy loads the addons named here)

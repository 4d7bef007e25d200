"""Run by scripts/with-rotator as `python3 -E -s scripts/with_rotator_lib/__main__.py ARGS`: prints the shell script
it evaluates (main.py)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from with_rotator_lib.main import main  # noqa: E402 - its folder is put on the path just above

sys.exit(main(sys.argv[1:]))

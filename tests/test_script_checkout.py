"""`mitmdump -s <checkout>/addons/rotator.py` runs that checkout's code, even where another checkout of Rotator is
installed (editable) in the same environment: a second clone or a git worktree beside the installed one."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_script_runs_the_code_of_its_own_checkout(tmp_path):
    other = tmp_path / "other-checkout"
    for part in ("addons", "rewrite", "protocols"):
        shutil.copytree(ROOT / part, other / part, ignore=shutil.ignore_patterns("__pycache__"))
    probe = ("import runpy, sys; runpy.run_path(sys.argv[1]); import rewrite, addons, protocols; "
             "print(rewrite.__file__, addons.__file__, protocols.__file__)")

    done = subprocess.run([sys.executable, "-c", probe, str(other / "addons" / "rotator.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr[-2000:]
    assert all(Path(f).is_relative_to(other) for f in done.stdout.split()), done.stdout

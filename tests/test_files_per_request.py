"""scripts/files-per-request: which files count as the project's, and what its measuring addon records."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from files_lib.counting import by_folder, project_file, project_files  # noqa: E402 - scripts/ is put on the path above

ROOT = "/work/checkout"


def test_the_products_python_files_count_by_their_path_in_the_checkout():
    assert project_file(f"{ROOT}/rewrite/exchange/pump.py", ROOT) == "rewrite/exchange/pump.py"
    assert project_file(f"{ROOT}/addons/interception.py", ROOT) == "addons/interception.py"
    assert project_file(f"{ROOT}/protocols/openai_chat/stream.py", ROOT) == "protocols/openai_chat/stream.py"
    assert project_file(f"{ROOT}/rewrite/../protocols/sse.py", ROOT) == "protocols/sse.py"


def test_tests_scripts_the_venv_and_other_dot_folders_do_not_count():
    for rel in ("tests/support/fake_vendor.py", "tests/test_sse.py", "scripts/files_lib/addon.py",
                "scripts/bench_lib/vendor.py", ".venv/lib/python3.12/site-packages/mitmproxy/flow.py",
                ".bench-venv/lib/python3.12/site-packages/litellm/main.py", ".cache/x/y.py"):
        assert project_file(f"{ROOT}/{rel}", ROOT) is None, rel


def test_what_names_no_file_of_the_checkout_does_not_count():
    for name in ("<string>", "<frozen importlib._bootstrap>", "<frozen runpy>",
                 "/usr/lib/python3.12/asyncio/events.py", "/work/checkout-other/rewrite/engine.py",
                 f"{ROOT}/lib/python3.12/site-packages/httpx/_client.py", f"{ROOT}/rewrite/__pycache__/engine.py",
                 f"{ROOT}/rewrite/engine.pyc", "rewrite/engine.py", f"{ROOT}/README.md"):
        assert project_file(name, ROOT) is None, name


def test_each_file_counts_once_and_files_are_grouped_by_folder():
    ran = [f"{ROOT}/rewrite/engine.py", f"{ROOT}/rewrite/engine.py", f"{ROOT}/rewrite/exchange/pump.py",
           f"{ROOT}/addons/status.py", f"{ROOT}/rewrite/exchange/attempt.py", f"{ROOT}/tests/conftest.py", "<string>"]
    files = project_files(ran, ROOT)
    assert files == ["addons/status.py", "rewrite/engine.py", "rewrite/exchange/attempt.py", "rewrite/exchange/pump.py"]
    assert by_folder(files) == {"addons": ["status.py"], "rewrite": ["engine.py"],
                                "rewrite/exchange": ["attempt.py", "pump.py"]}


def load_addon():
    path = Path(__file__).resolve().parents[1] / "scripts/files_lib/addon.py"
    spec = importlib.util.spec_from_file_location("files_per_request_addon", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_addon_records_the_functions_that_ran_while_on_and_nothing_after(tmp_path):
    source = tmp_path / "measured.py"
    source.write_text("def before():\n    pass\n\ndef during():\n    return inner()\n\ndef inner():\n    pass\n\n"
                      "def after():\n    pass\n")
    spec = importlib.util.spec_from_file_location("measured", source)
    measured = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(measured)
    profile = load_addon()._Profile()
    measured.before()
    profile.start()
    try:
        measured.during()
    finally:
        profile.stop()
    measured.after()
    assert profile.files()[str(source)] == ["during", "inner"]
    assert sys.getprofile() is None

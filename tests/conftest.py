"""Shared fixtures: the fake vendor, and the real proxy (`mitmdump -s addons/rotator.py`) as a subprocess.

    def test_rotation(fake_vendor, rotator):
        proxy = rotator(streaming={"first_token_timeout": 1})   # env applied: SDKs built with no arguments
        fake_vendor.script(Fault.stall_after_headers(5))
        openai.OpenAI().chat.completions.create(...)
        assert fake_vendor.keys()[:2] == ["sk-pool-1", "sk-pool-2"]   # (only with fresh=True: see `rotator`)

Safe under xdist: every worker has its own fake vendor, free ports and temp dirs.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import rewrite.plugins  # noqa: F401  (the built-in plug-ins, registered as the engine registers them)
from tests.support import engine_harness
from tests.support.alone import Turns
from tests.support.fake_vendor import FakeVendor
from tests.support.harness import (
    ADDON,
    PROXY_VARS,
    ROUTE_VARS,
    Rotator,
    RotatorPool,
    default_config,
    die_with_parent,
    merge,
)
from tests.support.redis_server import redis_server, redis_unix_server, redis_where
from tests.support.virtual_time import VirtualTimeLoop, pools_on_loop_time

# Rotator keeps its key pools' state under $XDG_STATE_HOME by default (rewrite/state/records.py): in tests, never in the
# real home, for addons run in-process and for every mitmdump the tests start (they inherit the environment).
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="rotator-test-state-")
atexit.register(shutil.rmtree, os.environ["XDG_STATE_HOME"], True)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # A worker of `scripts/test` (pytest-xdist) outlives a main process that was killed, and so would the proxies
    # it started: it ends with the run instead, and they with it (tests/support/harness.py).
    die_with_parent()

__all__ = ["each_transport", "fake_vendor", "llm_view", "redis_server", "redis_unix_server", "redis_where", "rotator", "rotator_pool"]


@pytest.fixture(params=engine_harness.TRANSPORTS)
def each_transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs an engine test (tests/support/engine_harness.py: run) once over httpx.MockTransport and once over the
    production client and lean transport to a local server. Use: `pytestmark = pytest.mark.usefixtures(...)`."""
    monkeypatch.setattr(engine_harness, "transport", request.param)
    return request.param


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], Any]]:
    """A test marked `virtual_time` runs on virtual time (tests/support/virtual_time.py), any other on asyncio's loop."""
    if item.get_closest_marker("virtual_time") is not None:
        return {"virtual_time": VirtualTimeLoop}
    return {"asyncio": asyncio.new_event_loop}


@pytest.fixture(autouse=True)
def _virtual_time(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """On virtual time, the key pools a test makes read the loop's time too (as they read asyncio's clock outside)."""
    if request.node.get_closest_marker("virtual_time") is not None:
        pools_on_loop_time(monkeypatch)


@pytest.fixture(autouse=True)
def _no_stray_routing(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test talks through a proxy, or to a vendor URL, that the environment outside happened to set."""
    for name in PROXY_VARS + ROUTE_VARS:
        monkeypatch.delenv(name, raising=False)


E2E_TIMEOUT = float(os.environ.get("ROTATOR_E2E_TIMEOUT", "120"))


class E2ETimeout(BaseException):
    """Not an Exception: the SDKs' retry loops catch Exception, and would swallow the watchdog."""


@pytest.fixture(autouse=True)
def _e2e_watchdog(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail an e2e test that runs longer than ROTATOR_E2E_TIMEOUT seconds (SDKs default to 600 s or no timeout,
    so a proxy that swallows a request would otherwise hang the worker). SIGALRM interrupts the blocking read."""
    if request.node.get_closest_marker("e2e") is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise E2ETimeout(f"e2e test still running after {E2E_TIMEOUT:g}s (ROTATOR_E2E_TIMEOUT)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, E2E_TIMEOUT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def _fake_vendor_server() -> Iterator[FakeVendor]:
    vendor = FakeVendor().start()
    yield vendor
    vendor.stop()


@pytest.fixture
def fake_vendor(_fake_vendor_server: FakeVendor, request: pytest.FixtureRequest) -> Iterator[FakeVendor]:
    """The fake vendor (one per worker, on a fixed port for the session), with scripts and records reset."""
    _fake_vendor_server.reset()
    request.node._fake_vendor = _fake_vendor_server
    yield _fake_vendor_server
    _fake_vendor_server.reset()


@pytest.fixture(scope="session")
def rotator_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RotatorPool]:
    pool = RotatorPool(tmp_path_factory.mktemp("rotator"))
    yield pool
    pool.close()


@pytest.fixture
def rotator(
    rotator_pool: RotatorPool,
    fake_vendor: FakeVendor,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., Rotator]]:
    """Factory: `rotator(overrides=None, *, env=None, fresh=False, apply_env=True, args=(), script=ADDON,
    **sections) -> Rotator`.

    The config is `default_config(fake vendor URL)` deep-merged with `overrides` and then with the keyword
    sections (`streaming={"first_token_timeout": 1}`, `providers={"openai": {"keys": ["${K}"]}}`); a None value
    deletes a key (`providers={"gemini": None}`). `env` is extra environment for mitmdump (for `${VAR}` keys),
    `args` extra mitmdump arguments.

    Processes are shared across the worker's session by identical (config, env, args, script), so the proxy's
    state (key rotation position, cooldowns) carries over between tests. Pass `fresh=True` for a private process
    when the test depends on that state; it is stopped at the end of the test.
    """
    fresh_procs = []
    handles: list[Rotator] = []
    request.node._rotators = handles

    def start(
        overrides: dict | None = None,
        *,
        env: dict[str, str] | None = None,
        fresh: bool = False,
        apply_env: bool = True,
        args: tuple[str, ...] | list[str] = (),
        script: str = ADDON,
        **sections: Any,
    ) -> Rotator:
        config = merge(merge(default_config(fake_vendor.url), overrides), sections)
        if fresh:
            proc = rotator_pool.fresh(config, env, tuple(args), script)
            fresh_procs.append(proc)
        else:
            proc = rotator_pool.get(config, env, tuple(args), script)
        handle = Rotator(proc, monkeypatch)
        handles.append(handle)
        if apply_env:
            handle.apply_env()
        return handle

    yield start
    for proc in fresh_procs:
        proc.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked `alone` last, as a group: each one waits for the tests under way on the other workers to end,
    and at the end of the run those are the short ones (and no other test waits for it)."""
    items.sort(key=lambda item: item.get_closest_marker("alone") is not None)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """(pytest-xdist's main process) Each worker's turns are kept in one directory of this run's."""
    config = node.config
    if not hasattr(config, "_rotator_turns"):
        config._rotator_turns = tempfile.mkdtemp(prefix="rotator-turns-")
        atexit.register(shutil.rmtree, config._rotator_turns, True)
    node.workerinput["rotator_turns"] = config._rotator_turns


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """A test marked `alone` (a latency bound) runs, set-up to tear-down, while no other worker runs any test
    (tests/support/alone.py): `scripts/test`, as the README gives it, runs every test on parallel workers."""
    directory = getattr(item.config, "workerinput", {}).get("rotator_turns")
    if directory is None:  # (not under xdist: one test at a time)
        return (yield)
    turns = getattr(item.config, "_rotator_turns_held", None)
    if turns is None:
        turns = item.config._rotator_turns_held = Turns(Path(directory))  # type: ignore[attr-defined]
    with turns.turn(alone=item.get_closest_marker("alone") is not None):
        return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """On failure, attach what the proxy logged during the test and what the fake vendor saw."""
    report = yield
    if report.failed:
        for handle in getattr(item, "_rotators", []):
            report.sections.append((f"rotator log (port {handle.port}, {handle.proc.log_path})", handle.log[-20000:]))
        for cluster in getattr(item, "_clusters", []):
            report.sections.append((f"scripts/cluster output ({cluster.out_path})", cluster.output()[-5000:]))
            for log in sorted((cluster.state / "logs").glob("*.log")):
                report.sections.append((f"cluster log {log.name}", log.read_text(errors="replace")[-10000:]))
        vendor = getattr(item, "_fake_vendor", None)
        if vendor is not None:
            lines = [
                f"#{r.index} {r.method} {r.path}{'?' + r.query if r.query else ''} key={r.credential} "
                f"stream={r.stream} -> {r.status} {r.outcome} events={len(r.events)}"
                for r in vendor.requests
            ]
            report.sections.append(("fake vendor requests", "\n".join(lines) or "(none)"))
    return report


@pytest.fixture(scope="module")
def llm_view():
    """The LLM content view registered with mitmproxy, as Rotator's addon registers it (tests/support/views.py)."""
    from mitmproxy import contentviews  # (imported here: only the view tests load mitmproxy's contentviews)

    from addons.views import LLMContentview
    from rewrite.engine import Engine

    view = LLMContentview(Engine())
    contentviews.add(view)
    yield view
    contentviews.registry._by_name.pop(view.name.lower(), None)

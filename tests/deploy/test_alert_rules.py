"""Prometheus configuration and alert rules: promtool accepts them, and unit tests pin every alert's behaviour."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.prometheus import REPO_ROOT, RULES_DIR

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
OPERATIONS_DOC = REPO_ROOT / "docs" / "operations.md"


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed: run `scripts/setup.sh --dev` (Debian package prometheus)")
    return subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=120, check=False)


def alerts() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_promtool_accepts_the_prometheus_config_and_its_rule_files() -> None:
    result = promtool("check", "config", PROMETHEUS_DIR / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    # The config loads the rule files by a relative glob: make sure it found them rather than nothing.
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout + result.stderr


def test_promtool_accepts_the_rules() -> None:
    assert RULE_FILES
    result = promtool("check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    result = promtool("test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unit_tests_cover_every_alert_firing_and_staying_quiet() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - fires == set(), "alerts never shown to fire"
    assert names - quiet == set(), "alerts never shown to stay quiet"


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_alert_tells_a_tired_operator_what_is_wrong_and_where_to_look(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"page", "warning"}
    annotations = rule["annotations"]
    summary = " ".join(annotations["summary"].split())
    assert 20 <= len(summary) <= 130, summary
    assert annotations["description"].strip()
    anchor = f"docs/operations.md#{rule['alert'].lower()}"
    assert annotations["runbook"] == anchor
    headings = re.findall(r"^#+\s+(\S+)\s*$", OPERATIONS_DOC.read_text(encoding="utf-8"), re.MULTILINE)
    assert rule["alert"] in headings, f"docs/operations.md has no runbook heading for {rule['alert']}"


def test_prometheus_config_scrapes_every_process() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    # The job names are what the alert rules and dashboards select on.
    assert {"soro-bot", "soro-worker", "vllm", "redis", "kannel"} <= jobs
    rules_text = "\n".join(path.read_text(encoding="utf-8") for path in RULE_FILES)
    for job in re.findall(r'job="([^"]+)"', rules_text):
        assert job in jobs, f"rules select job {job!r} that Prometheus never scrapes"


def test_prometheus_config_files_exist_where_the_container_reads_them() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    for pattern in config["rule_files"]:
        assert not Path(pattern).is_absolute(), "relative to the config, so promtool checks the same files"
        assert sorted(PROMETHEUS_DIR.glob(pattern)) == RULE_FILES

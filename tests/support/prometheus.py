"""A real Prometheus for tests, and every PromQL expression that the dashboards and alert rules rely on.

``running_prometheus`` starts the ``prometheus`` binary (Debian package ``prometheus``) on a free loopback port,
scraping the given targets every second and evaluating the project's alert rules. ``all_expressions`` extracts
every expression from the Grafana dashboards (panel targets and variable queries, with Grafana's variables
replaced by concrete values) and from the rule files. ``assert_expressions_work`` evaluates them all against a
running Prometheus: each must parse and evaluate, and those that should have data must return a series.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from soro.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO_ROOT / "deploy" / "grafana" / "dashboards"
RULES_DIR = REPO_ROOT / "deploy" / "prometheus" / "rules"

# What Grafana puts in place of its variables. "All" of a multi-value variable becomes its allValue, ".*".
DEFAULT_VARIABLES: Mapping[str, str] = {
    "channel": ".*",
    "instance": ".*",
    "model_name": ".*",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "6h",
}

# Grafana's variable query `label_values(selector, label)`: the selector is the PromQL part.
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<selector>.+?)\s*,\s*(?P<label>\w+)\s*\)\s*$", re.DOTALL)
_QUERY_RESULT = re.compile(r"^\s*query_result\((?P<expr>.+)\)\s*$", re.DOTALL)
_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"')
_METRIC_NAME = re.compile(
    r"(?<![\w:])(?:soro_|soro:|vllm:|redis_|bearerbox_)[A-Za-z0-9_:]*|(?<![\w:$])(?:up|ALERTS)(?=\s*\{)"
)


@dataclass(frozen=True)
class Expression:
    """One PromQL expression and where an operator meets it."""

    source: str  # file name: soro.json, vllm.json, soro.yml
    kind: str  # panel, variable, alert, record
    name: str  # panel title, variable name, alert or recording rule name
    expr: str
    ref: str = ""  # the target's refId inside a panel

    def __str__(self) -> str:
        ref = f" [{self.ref}]" if self.ref else ""
        return f"{self.source} › {self.kind} {self.name!r}{ref}: {self.expr}"

    @property
    def metric_names(self) -> frozenset[str]:
        return metric_names(self.expr)


def metric_names(expr: str) -> frozenset[str]:
    """Metric names an expression reads (those of Soro, vLLM, the exporters, and ``up``/``ALERTS``)."""
    return frozenset(_METRIC_NAME.findall(_STRING_LITERAL.sub('""', expr)))


def substitute(expr: str, variables: Mapping[str, str]) -> str:
    """Replace Grafana's ``$name``, ``${name}`` and ``[[name]]`` with values; longer names first."""
    for name in sorted(variables, key=len, reverse=True):
        value = variables[name]
        expr = expr.replace(f"${{{name}}}", value).replace(f"[[{name}]]", value)
        expr = re.sub(rf"\${re.escape(name)}(?!\w)", value.replace("\\", "\\\\"), expr)
    if leftover := re.search(r"\$\{?\w+|\[\[\w+\]\]", expr):
        raise ValueError(f"Grafana variable {leftover[0]} has no value in {expr!r}")
    return expr


def _panels(panels: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", ()))  # a collapsed row keeps its panels inside


def dashboard_expressions(path: Path, variables: Mapping[str, str] = DEFAULT_VARIABLES) -> list[Expression]:
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    found: list[Expression] = []
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable["query"]
        query = query.get("query", "") if isinstance(query, dict) else query
        if match := _LABEL_VALUES.match(query):
            query = match["selector"]
        elif match := _QUERY_RESULT.match(query):
            query = match["expr"]
        found.append(Expression(path.name, "variable", variable["name"], substitute(query, variables)))
    for panel in _panels(dashboard.get("panels", ())):
        for target in panel.get("targets", ()):
            if target.get("expr"):
                found.append(
                    Expression(
                        path.name, "panel", panel["title"], substitute(target["expr"], variables), target["refId"]
                    )
                )
    return found


def rule_expressions(path: Path) -> list[Expression]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    found: list[Expression] = []
    for group in document["groups"]:
        for rule in group["rules"]:
            kind, name = ("alert", rule["alert"]) if "alert" in rule else ("record", rule["record"])
            found.append(Expression(path.name, kind, name, rule["expr"].strip()))
    return found


def all_expressions(variables: Mapping[str, str] = DEFAULT_VARIABLES) -> list[Expression]:
    """Every expression of every dashboard and every rule file in ``deploy/``."""
    found: list[Expression] = []
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        found += dashboard_expressions(path, variables)
    for path in sorted(RULES_DIR.glob("*.yml")):
        found += rule_expressions(path)
    return found


class PrometheusError(RuntimeError):
    pass


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float


class Prometheus:
    """The HTTP API of a running Prometheus."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:  # 400/422 carry the parse or evaluation error as JSON
            body = json.load(exc)
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[Sample]:
        """Evaluate an instant query now; raises ``PrometheusError`` when it does not parse or evaluate."""
        data = self._get("/api/v1/query", query=expr)
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][1]))]
        if data["resultType"] != "vector":
            raise PrometheusError(f"{expr!r} returned a {data['resultType']}, not an instant vector")
        return [Sample(item["metric"], float(item["value"][1])) for item in data["result"]]

    def metric_names(self) -> frozenset[str]:
        return frozenset(self._get("/api/v1/label/__name__/values"))

    def targets(self) -> list[Mapping[str, Any]]:
        return list(self._get("/api/v1/targets")["activeTargets"])

    def rule_errors(self) -> list[str]:
        """Rules whose last evaluation failed, as 'name: error'."""
        groups = self._get("/api/v1/rules")["groups"]
        return [
            f"{rule['name']}: {rule.get('lastError')}"
            for group in groups
            for rule in group["rules"]
            if rule.get("health") not in ("ok", "unknown")
        ]

    def wait_until(self, expr: str, timeout: float = 30.0) -> list[Sample]:
        """Poll until ``expr`` returns a series with a number in it; its samples."""
        deadline = time.monotonic() + timeout
        while True:
            samples = [s for s in self.query(expr) if not math.isnan(s.value)]
            if samples:
                return samples
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expr!r} returned no data within {timeout:.0f} s")
            time.sleep(0.25)


def scrape_config(
    targets: Mapping[str, Sequence[str]],
    rule_files: Sequence[Path] = (),
    scrape_interval: str = "1s",
) -> dict[str, Any]:
    """A Prometheus configuration scraping ``{job: [host:port, ...]}`` and loading ``rule_files``."""
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(hosts)}]} for job, hosts in targets.items()
        ],
    }


@contextmanager
def running_prometheus(
    targets: Mapping[str, Sequence[str]],
    workdir: Path,
    rule_files: Sequence[Path] | None = None,
    scrape_interval: str = "1s",
    ready_timeout: float = 30.0,
) -> Iterator[Prometheus]:
    """Run a real Prometheus scraping ``targets``; by default it also evaluates the project's alert rules."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise FileNotFoundError("the prometheus binary is not installed: run `scripts/setup.sh --dev`")
    if rule_files is None:
        rule_files = sorted(RULES_DIR.glob("*.yml"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(targets, rule_files, scrape_interval)), encoding="utf-8")
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    prometheus = Prometheus(f"http://127.0.0.1:{port}")
    try:
        _wait_ready(prometheus, process, workdir / "prometheus.log", ready_timeout)
        yield prometheus
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_ready(prometheus: Prometheus, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise PrometheusError(f"prometheus exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{prometheus.url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"prometheus not ready within {timeout:.0f} s:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


@dataclass(frozen=True)
class Outcome:
    expression: Expression
    series: int  # series with a number (not NaN) in them
    error: str = ""


def evaluate(prometheus: Prometheus, expressions: Iterable[Expression]) -> list[Outcome]:
    outcomes = []
    for expression in expressions:
        try:
            samples = prometheus.query(expression.expr)
        except PrometheusError as exc:
            outcomes.append(Outcome(expression, 0, str(exc)))
            continue
        outcomes.append(Outcome(expression, sum(not math.isnan(s.value) for s in samples)))
    return outcomes


def assert_expressions_work(
    prometheus: Prometheus,
    expressions: Sequence[Expression] | None = None,
    expect_data: Callable[[Expression], bool] = lambda expression: expression.kind in ("panel", "variable"),
) -> list[Outcome]:
    """Every expression parses and evaluates; every one ``expect_data`` picks returns a series with a number.

    By default all dashboard expressions must have data and rule expressions need only evaluate (an alert's
    expression is empty while all is well). All failures are reported together.
    """
    if expressions is None:
        expressions = all_expressions()
    outcomes = evaluate(prometheus, expressions)
    failures = [f"does not evaluate ({o.error}): {o.expression}" for o in outcomes if o.error]
    failures += [
        f"no data: {o.expression}" for o in outcomes if not o.error and o.series == 0 and expect_data(o.expression)
    ]
    if failures:
        raise AssertionError(f"{len(failures)} of {len(outcomes)} expressions fail:\n" + "\n".join(failures))
    return outcomes


def assert_metric_names_known(
    prometheus: Prometheus, expressions: Sequence[Expression], prefixes: Sequence[str] = ("soro_",)
) -> None:
    """Every metric name with one of ``prefixes`` that an expression reads has been scraped (no typos)."""
    known = prometheus.metric_names()
    unknown = sorted(
        {name for e in expressions for name in e.metric_names if name.startswith(tuple(prefixes)) and name not in known}
    )
    if unknown:
        raise AssertionError(f"metrics read by dashboards or rules but never scraped: {', '.join(unknown)}")

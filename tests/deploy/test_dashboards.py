"""The Grafana dashboards are valid, provisioned JSON that read only metrics our processes really export."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from soro.metrics import BotMetrics, WorkerMetrics
from soro.settings import Settings
from tests.support.prometheus import DASHBOARDS_DIR, REPO_ROOT, all_expressions, dashboard_expressions

PROVISIONING = REPO_ROOT / "deploy" / "grafana" / "provisioning"
DASHBOARDS = sorted(DASHBOARDS_DIR.glob("*.json"))
OPERATIONS_DOC = REPO_ROOT / "docs" / "operations.md"

# The oldest schema Grafana 11 reads without a migration that could rewrite panels.
MIN_SCHEMA_VERSION = 36
PANEL_TYPES = {"row", "timeseries", "stat"}

# Metric names of the exporters pinned in docker-compose.yml that the dashboards and rules read
# (redis_exporter v1.88 with --check-streams, kannel_exporter 0.8): a typo here would be a silent empty panel.
EXPORTER_METRICS = {
    "redis_up",
    "redis_aof_enabled",
    "redis_memory_used_bytes",
    "redis_connected_clients",
    "redis_stream_length",
    "redis_stream_group_lag",
    "redis_stream_group_messages_pending",
    "bearerbox_up",
    "bearerbox_sms_sent_queued",
    "bearerbox_sms_received_queued",
    "bearerbox_smsc_online_connections",
}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def provisioned_datasource_uid() -> str:
    document = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text(encoding="utf-8"))
    (datasource,) = document["datasources"]
    uid: str = datasource["uid"]
    return uid


def sample_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name the registry's metrics can expose, children created or not."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {family.name + suffix for family in registry.collect() for suffix in suffixes[family.type]}


def metrics_labelled_by(label: str) -> set[str]:
    """Names (without _total) of the Soro metrics that carry ``label``."""
    return {
        metric._name
        for metrics in (BotMetrics(), WorkerMetrics())
        for metric in vars(metrics).values()
        if isinstance(metric, MetricWrapperBase) and label in metric._labelnames
    }


def test_both_dashboards_exist() -> None:
    assert [path.name for path in DASHBOARDS] == ["soro.json", "vllm.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_valid_grafana_json(path: Path) -> None:
    dashboard = load(path)
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= MIN_SCHEMA_VERSION
    assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"]), "a stable uid keeps links and bookmarks working"
    assert dashboard["title"] and dashboard["panels"]
    assert "id" not in dashboard or dashboard["id"] is None, "provisioned dashboards get their id from Grafana"

    panels = list(all_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert {panel["type"] for panel in panels} <= PANEL_TYPES


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_panels_do_not_overlap_and_fit_the_grid(path: Path) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in all_panels(load(path)["panels"]):
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] >= 1 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_queries_the_provisioned_datasource_and_says_what_it_shows(path: Path) -> None:
    uid = provisioned_datasource_uid()
    for panel in all_panels(load(path)["panels"]):
        if panel["type"] == "row":
            continue
        title = panel["title"]
        description = panel.get("description", "")
        assert description and "\n" not in description and len(description) <= 120, f"{title}: {description!r}"
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, title
        targets = panel["targets"]
        assert targets, f"{title} has no query"
        assert len({t["refId"] for t in targets}) == len(targets), f"{title}: duplicate refIds"
        for target in targets:
            assert target["datasource"]["uid"] == uid, title
            assert target["expr"].strip(), title


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_variables_query_the_provisioned_datasource(path: Path) -> None:
    uid = provisioned_datasource_uid()
    variables = load(path)["templating"]["list"]
    assert "instance" in {v["name"] for v in variables}
    for variable in variables:
        assert variable["datasource"]["uid"] == uid
        # "All" must become a regex that matches everything, since queries use =~"$variable".
        assert variable["includeAll"] and variable["allValue"] == ".*"


def test_our_dashboard_filters_by_instance_and_channel() -> None:
    dashboard = load(DASHBOARDS_DIR / "soro.json")
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["instance", "channel"]
    channel_metrics = metrics_labelled_by("channel")
    assert "soro_end_to_end_latency_seconds" in channel_metrics
    selector = re.compile(r"(soro_\w+)\{([^}]*)\}")
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            for name, matchers in selector.findall(target["expr"]):
                base = re.sub(r"_(total|bucket|sum|count)$", "", name)
                if base in channel_metrics:
                    # Follow the channel choice, or name the one channel the panel is about.
                    assert 'channel=~"$channel"' in matchers or 'channel="' in matchers, f"{panel['title']}: {name}"
                assert 'instance=~"$instance"' in matchers, f"{panel['title']}: {name} ignores the instance choice"


def test_our_dashboard_answers_the_operators_questions() -> None:
    dashboard = load(DASHBOARDS_DIR / "soro.json")
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == [
        "Health",
        "Traffic",
        "Latency",
        "Queue and workers",
        "Model",
        "Feedback",
        "Errors",
        "SMS",
        "Link quality",
        "Redis and Kannel",
    ]
    exprs = "\n".join(t["expr"] for p in all_panels(dashboard["panels"]) for t in p.get("targets", []))
    for needed in [
        "soro_messages_received_total",  # traffic
        "histogram_quantile(0.99, sum by (channel, le) (rate(soro_end_to_end_latency_seconds_bucket",
        "soro_first_visible_text_seconds_bucket",
        "soro_backlog_requests",
        "soro_oldest_request_age_seconds",
        "soro_inflight_requests",
        "soro_worker_capacity",
        "soro_time_to_first_token_seconds_bucket",
        "rate(soro_generated_tokens_total",  # tokens/s
        "sum by (method, code) (rate(soro_telegram_api_errors_total",
        'code="429"',
        "soro_sms_gateway_errors_total",
        'soro_sms_dlr_total{status=~"undelivered|smsc_rejected"',
        "soro_deadline_expired_total",
        "soro_feedback_total",  # 👍/👎 by model and channel
        "soro_model_replies_total",
        "soro_model_latency_seconds_bucket",
        "soro_dead_letters_total",
        "soro_turns_requeued_total",  # turns a restarted Redis lost
        "soro_sms_segments_per_answer_bucket",
        "soro:sms_spend_24h",  # cost per day
        "soro_sms_answers_trimmed_total",
        "soro_telegram_api_latency_seconds_bucket",  # link round-trip time
        "soro_telegram_bytes_sent_total",
        "redis_up",
        "bearerbox_up",
    ]:
        assert needed in exprs, needed


def test_vllm_dashboard_covers_load_latency_and_throughput() -> None:
    exprs = "\n".join(e.expr for e in dashboard_expressions(DASHBOARDS_DIR / "vllm.json"))
    for needed in [
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:e2e_request_latency_seconds_bucket",
        "vllm:inter_token_latency_seconds_bucket",
        "vllm:generation_tokens_total",
        "vllm:prompt_tokens_total",
    ]:
        assert needed in exprs, needed


def test_provisioning_points_grafana_at_the_dashboards() -> None:
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "soro.yml").read_text(encoding="utf-8"))
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/etc/grafana/dashboards"  # where docker-compose.yml mounts them
    uids = [load(path)["uid"] for path in DASHBOARDS]
    assert len(uids) == len(set(uids))


def test_soro_metrics_read_by_dashboards_and_rules_exist_in_soro_metrics() -> None:
    exported = sample_names(BotMetrics().registry) | sample_names(WorkerMetrics().registry)
    read = {name for e in all_expressions() for name in e.metric_names if name.startswith("soro_")}
    assert read, "no soro_ metric found: the extraction is broken"
    assert read <= exported, f"not exported by soro.metrics: {sorted(read - exported)}"


def test_exporter_metrics_read_by_dashboards_and_rules_are_known() -> None:
    read = {name for e in all_expressions() for name in e.metric_names if name.startswith(("redis_", "bearerbox_"))}
    assert read <= EXPORTER_METRICS, f"unknown exporter metrics: {sorted(read - EXPORTER_METRICS)}"


def vllm_metric_names(loggers: Path) -> set[str]:
    """Sample names vLLM's Prometheus logger registers, read from its source."""
    source = loggers.read_text(encoding="utf-8")
    suffixes: Mapping[str, tuple[str, ...]] = {
        "counter": ("_total",),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count"),
    }
    return {
        name + suffix
        for kind, name in re.findall(r"_(counter|gauge|histogram)_cls\(\s*name=\"(vllm:\w+)\"", source)
        for suffix in suffixes[kind]
    }


def test_vllm_metrics_read_by_the_dashboard_exist_in_the_vllm_we_serve() -> None:
    found = sorted(Settings().vllm_venv.glob("lib/python3*/site-packages/vllm/v1/metrics/loggers.py"))
    if not found:
        pytest.skip(f"vLLM is not installed at {Settings().vllm_venv}: run scripts/setup-vllm.sh")
    exported = vllm_metric_names(found[0])
    assert "vllm:num_requests_running" in exported, "the source changed shape: update vllm_metric_names"
    read = {name for e in all_expressions() for name in e.metric_names if name.startswith("vllm:")}
    assert read and read <= exported, f"not exported by vLLM: {sorted(read - exported)}"


def test_operations_guide_explains_every_row() -> None:
    guide = OPERATIONS_DOC.read_text(encoding="utf-8")
    for path in DASHBOARDS:
        for panel in load(path)["panels"]:
            if panel["type"] == "row":
                assert f"**{panel['title']}**" in guide, f"docs/operations.md does not explain row {panel['title']!r}"

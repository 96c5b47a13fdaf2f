"""The scale report as plain-text tables (the CLI prints them, docs/scale.md quotes them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remem.bench.metrics import format_table

INGEST_COLUMNS = ("memories", "users", "ingest_t/s", "model_t/s", "x_model", "disk_MB",
                  "peak_MB")  # fmt: skip
SEARCH_COLUMNS = ("user_mem", "user_first", "user_p50", "user_p95", "tenant_mem",
                  "tenant_first", "tenant_p50", "tenant_p95")  # fmt: skip
ANN_COLUMNS = ("recall@10", "p50_ms", "p95_ms", "build_s", "index_MB")
CHANNEL_COLUMNS = ("rows", "nodes", "recall@10", "p50_ms", "p95_ms")
# experiment key -> label; each holds figures directly or ``by_ef``
EXPERIMENTS = (
    ("tenant", "tenant HNSW"),
    ("scope_before", "user: own index (before)"),
    ("scope_after", "user: tenant index, filter after"),
    ("scope_iterative", "user: iterative scan (after)"),
    ("scope_exact_sql", "user: exact scan in SQL (before)"),
)


def _name(run: Mapping[str, Any]) -> str:
    return f"{run['backend']} {run['size']:,}"


def ingest_row(run: Mapping[str, Any]) -> dict[str, float]:
    """Counts, ingest speed (remem's own, the model's, their ratio), disk, peak memory."""
    ingest = run["ingest"]
    return {
        "memories": run["memories"], "users": run["users"],
        "ingest_t/s": ingest["turns_per_second"],
        "model_t/s": round(ingest["turns_per_second"] / ingest["over_embedder"], 1),
        "x_model": ingest["over_embedder"],
        "disk_MB": round(run["disk"]["bytes"] / (1 << 20), 1),
        "peak_MB": run["peak_rss_mb"]["ingest_and_search"],
    }  # fmt: skip


def search_row(run: Mapping[str, Any]) -> dict[str, float]:
    """``Memory.search`` within the first user's scope and across the tenant (ms)."""
    user, tenant = run["search"]["user"], run["search"]["tenant"]
    return {
        "user_mem": run["scope_vectors"], "user_first": user["first_ms"],
        "user_p50": user["p50_ms"], "user_p95": user["p95_ms"],
        "tenant_mem": run["vectors"], "tenant_first": tenant["first_ms"],
        "tenant_p50": tenant["p50_ms"], "tenant_p95": tenant["p95_ms"],
    }  # fmt: skip


def ann_rows(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """One row per ANN experiment and ef_search, after the exact baselines."""
    ann, name = run["ann"], _name(run)
    rows: dict[str, dict[str, Any]] = {
        f"{name} exact tenant (numpy)": dict(ann["exact"]["tenant"]),
        f"{name} exact user (numpy)": dict(ann["exact"]["scope"]),
    }
    for key, label in EXPERIMENTS:
        found = ann.get(key)
        if found is None:
            continue
        shared = {"build_s": found.get("build_s"), "index_MB": found.get("index_mb")}
        extra = f", fetch {found['fetch']}" if "fetch" in found else ""
        if "by_ef" not in found:
            rows[f"{name} {ann['engine']} {label}"] = dict(found)
            continue
        for ef, figures in found["by_ef"].items():
            rows[f"{name} {ann['engine']} {label}, ef {ef}{extra}"] = {**figures, **shared}
    return rows


def channel_rows(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """remem's dense channel across the tenant: its HNSW graph, and the exact scan."""
    found = run.get("dense_channel")
    if not found:
        return {}
    graph = "graph" if found["rows"] >= found["graph_from_rows"] else "graph (below its size)"
    sizes = {"rows": found["rows"], "nodes": found.get("graph_nodes")}
    rows = {f"{_name(run)} {graph}": {**sizes, **found["graph"]}}
    for ef, figures in found.get("graph_by_ef", {}).items():
        rows[f"{_name(run)} {graph}, ef {ef}"] = {**sizes, **figures}
    rows[f"{_name(run)} exact scan"] = {"rows": found["rows"], "recall@10": 1.0, **found["exact"]}
    return rows


def tables(report: Mapping[str, Any]) -> str:
    """The whole report: ingest and storage, search, then ANN against exact."""
    runs = report["runs"]
    speed = report["embedder_speed"]
    lines = [
        f"scale  embedder={report['embedder']}  pool={report['pool']['texts']:,} texts  "
        f"queries={report['pool']['queries']}  (model: {speed['turns_per_second']} turns/s, "
        f"query embedding p50 {speed['query']['p50_ms']} ms)",
        "",
        "ingest (turns/s through Memory.add, model time excluded) and storage",
        format_table({_name(r): ingest_row(r) for r in runs}, INGEST_COLUMNS, "run"),
        "",
        "Memory.search, default recipe, 10 hits, query vector cached (ms)",
        format_table({_name(r): search_row(r) for r in runs}, SEARCH_COLUMNS, "run"),
        "",
        "remem's dense channel across the tenant: HNSW graph (rescored; nodes: its distinct "
        "vectors) against the exact scan, 10 rows (ms)",
        format_table(
            {k: v for r in runs for k, v in channel_rows(r).items()}, CHANNEL_COLUMNS, "run"
        ),
        "",
        "ANN against exact top-10 (same query vectors; p50/p95 per query, ms)",
    ]
    for run in runs:
        lines.append(format_table(ann_rows(run), ANN_COLUMNS, "run"))
        plans = {
            k: run["ann"][k]["plan"] for k, _ in EXPERIMENTS if "plan" in run["ann"].get(k, {})
        }
        if plans:
            lines.append("  PostgreSQL plans: " + ", ".join(f"{k}: {v}" for k, v in plans.items()))
        lines.append("")
    return "\n".join(lines).rstrip()

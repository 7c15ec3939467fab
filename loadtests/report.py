"""The run's report, written next to locust's own HTML and CSV files:

- ``timeline.csv``: per time bucket and level, requests, failures, req/s, p50/p95/p99;
- ``latency.png``, ``throughput.png``, ``errors.png``: those series per level over time;
- ``report.html``: the gate's verdict and breaches, page loads against API calls, per-level and
  per-endpoint tables, the charts, the capacity plan for this run's load (what the cloud needs to
  serve it at the target utilisation, ``loadtests.capacity``) and a link to locust's report
  (``locust.html``).
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path
from typing import Any

from loadtests.config import LEVELS
from loadtests.timeline import percentile

COLOURS = {
    "province": "#7b3294",
    "city": "#2c7bb6",
    "county": "#d7191c",
    "township": "#fdae61",
    "village": "#1a9641",
}


def series(timeline: dict[str, Any]) -> tuple[list[int], dict[str, list[dict[str, float]]]]:
    """Bucket starts (seconds from the first) and, per level, one record per bucket."""
    rows = timeline["rows"]
    bucket = timeline["bucket_s"]
    if not rows:
        return [], {}
    first = min(r[1] for r in rows)
    last = max(r[1] for r in rows)
    starts = list(range(first, last + bucket, bucket))
    by: dict[tuple[str, int], list[Any]] = {(r[0], r[1]): r for r in rows}
    out: dict[str, list[dict[str, float]]] = {}
    for level in [lv for lv in LEVELS if any(r[0] == lv for r in rows)]:
        recs = []
        for at in starts:
            r = by.get((level, at))
            n, fails, hist = (r[2], r[3], r[4]) if r else (0, 0, [])
            recs.append(
                {
                    "t": at - first,
                    "requests": n,
                    "failures": fails,
                    "rps": n / bucket,
                    "error_ratio": fails / n if n else 0.0,
                    "p50_ms": percentile(hist, 0.5),
                    "p95_ms": percentile(hist, 0.95),
                    "p99_ms": percentile(hist, 0.99),
                }
            )
        out[level] = recs
    return [s - first for s in starts], out


def write_csv(path: Path, per_level: dict[str, list[dict[str, float]]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["t_s", "level", "requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms"])
        for level, recs in per_level.items():
            for r in recs:
                w.writerow(
                    [
                        r["t"],
                        level,
                        r["requests"],
                        r["failures"],
                        f"{r['rps']:.2f}",
                        r["p50_ms"],
                        r["p95_ms"],
                        r["p99_ms"],
                    ]
                )


def _chart(
    path: Path,
    per_level: dict[str, list[dict[str, float]]],
    key: str,
    title: str,
    ylabel: str,
    limits: dict[str, float] | None = None,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=100)
    for level, recs in per_level.items():
        xs = [r["t"] for r in recs if r["requests"]]
        ys = [r[key] for r in recs if r["requests"]]
        ax.plot(xs, ys, marker=".", label=level, color=COLOURS.get(level))
        if limits and level in limits:
            ax.axhline(limits[level], color=COLOURS.get(level), linestyle=":", linewidth=1)
    ax.set_title(title)
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if per_level:
        ax.legend(loc="upper left", fontsize="small", ncol=5)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _table(rows: list[dict[str, Any]], cols: list[tuple[str, str]]) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in cols)
    body = []
    for r in rows:
        cls = ' class="bad"' if r.get("_bad") else ""
        cells = "".join(f"<td>{html.escape(str(r.get(k, '')))}</td>" for k, _ in cols)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def run_capacity(
    report_dir: Path, per_level: dict[str, list[dict[str, float]]]
) -> dict[str, Any] | None:
    """The capacity plan for this run's load, from the run's ``config.json``: the open model's
    top of the curve (peak × the profile's highest point), or in the closed model the highest
    throughput measured; CPU per request from ``costs.json`` in the report directory when a
    benchmark left one there, else the built-in figures. None when the run left no config."""
    from govcloud.errors import InputError
    from loadtests import capacity as cap

    path = report_dir / "config.json"
    if not path.exists():
        return None
    cfg = json.loads(path.read_text(encoding="utf-8"))
    if cfg.get("mode") == "rate":
        peak = float(cfg["peak"])
        multiple = max(float(v) for _, v in cfg["points"])
        basis = f"this run's offered load: peak {peak:g}/s × {multiple:g} at the top of the curve"
    else:
        starts = {r["t"] for recs in per_level.values() for r in recs}
        totals = [
            sum(r["rps"] for recs in per_level.values() for r in recs if r["t"] == t)
            for t in starts
        ]
        peak, multiple = max(totals, default=0.0), 1.0
        basis = "the highest throughput this run measured (closed model)"
    if peak <= 0:
        return None
    mix = {lv: float(cfg.get("level_mix", {}).get(lv, 0.0)) for lv in LEVELS}
    demand = cap.Demand(peak_rps=peak, surge_multiple=multiple, level_mix=mix, basis=basis)
    try:
        costs_path = report_dir / "costs.json"
        costs = cap.load_costs(costs_path if costs_path.exists() else None)
        try:
            from clusters.deploy.spec import load_app

            replica_cpu = cap.hall_replica_cpu(load_app(cap.HALL_APP_SPEC), "hall app spec")
            source = "the hall's app spec (resources)"
        except InputError:
            replica_cpu, source = cap.DEFAULT_REPLICA_CPU, "default (the hall's app spec unread)"
        sizes = cap.Sizes(replica_cpu=replica_cpu, replica_cpu_source=source)
        slo = {lv: float(s["p95_ms"]) for lv, s in cfg.get("slo", {}).items()}
        return cap.plan_capacity(demand, costs, sizes, slo).as_dict()
    except InputError as exc:
        return {"error": exc.render()}


def capacity_section(plan: dict[str, Any] | None) -> str:
    """The report's capacity section (empty without a plan)."""
    if not plan:
        return ""
    if "error" in plan:
        return f"<h2>Capacity</h2><p>No capacity plan: {html.escape(plan['error'])}</p>"
    d, c, s = plan["demand"], plan["costs"], plan["sizes"]
    rows = [
        {**lp, "surge_rps": f"{lp['surge_rps']:.1f}"}
        | {
            k: f"{lp[k]:.2f}"
            for k in ("hall_cores", "postgresql_cores", "nginx_cores", "node_cores")
        }
        for lp in [*plan["levels"], plan["total"]]
    ]
    cols = [
        ("level", "level"),
        ("surge_rps", "req/s"),
        ("hall_cores", "hall cores"),
        ("hall_replicas", "hall replicas"),
        ("postgresql_cores", "PostgreSQL cores"),
        ("nginx_cores", "nginx cores"),
        ("node_cores", "node cores"),
        ("nodes", "nodes"),
    ]
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in plan["notes"])
    return f"""<h2>Capacity for this load</h2>
<p>{html.escape(d["basis"])}: {d["surge_rps"]:.1f} requests/s. CPU per request: hall
{c["hall_ms"]:g} ms, PostgreSQL {c["postgresql_ms"]:g} ms, nginx {c["nginx_ms"]:g} ms
({html.escape(c["source"])}, {html.escape(c["measured_at"])}, {html.escape(c["measured_where"])}).
Cores at {s["utilisation"]:.0%} utilisation; replicas of {s["replica_cpu"]:g} CPU
({html.escape(s["replica_cpu_source"])}); nodes of {s["node_cores"]} cores
({html.escape(s["node_cores_source"])}). <code>govcloud loadtest capacity</code> plans the
spec's own surge.</p>
{_table(rows, cols)}
<ul>{notes}</ul>
"""


def tls_section(report_dir: Path, costs: dict[str, Any] | None) -> str:
    """What TLS cost this run's requests at the edge: how many of the run's targets were
    HTTPS (from its ``config.json``), and the edge's CPU per request with and without TLS as
    bench edge_tls measured it, against the server's whole cost per request."""
    from loadtests.capacity import DEFAULT_COSTS, EDGE_TLS

    path = report_dir / "config.json"
    if not path.exists():
        return ""
    targets = [str(t) for t in json.loads(path.read_text(encoding="utf-8")).get("targets", [])]
    https = [t for t in targets if t.startswith("https://")]
    t = EDGE_TLS
    server_ms = float((costs or {}).get("server_ms", DEFAULT_COSTS.server_ms))
    extra_ms = (t.https_us - t.http_us) / 1000
    over = (
        f"This run's requests went over HTTPS ({len(https)} of {len(targets)} targets)."
        if https
        else f"This run's requests went over plain HTTP ({len(targets)} targets): no TLS cost."
    )
    return f"""<h2>TLS at the edge</h2>
<p>{html.escape(over)} What TLS costs the edge ({html.escape(t.measured_where)},
{html.escape(t.measured_at)}): {t.https_us:g} µs of CPU per request over keep-alive HTTPS against
{t.http_us:g} µs over plain HTTP ({t.keepalive_ratio:.2f}x); {t.new_connection_us:g} µs when a
request opens a new connection with a full handshake ({t.new_connection_ratio:.1f}x); one edge
core completes {t.handshakes_per_core_s:g} full handshakes a second. Against the server's
{server_ms:g} ms per request, keep-alive TLS adds {extra_ms / server_ms:.1%}.</p>
"""


def write_report(
    report_dir: Path, meta: dict[str, Any], capacity: dict[str, Any] | None = None
) -> Path:
    """Render the charts, the CSV and ``report.html`` from ``gate.json`` and ``timeline.json``.
    ``capacity``: a capacity plan (``Plan.as_dict()``) to show; by default the plan for this
    run's own load (:func:`run_capacity`)."""
    gate = json.loads((report_dir / "gate.json").read_text(encoding="utf-8"))
    timeline = json.loads((report_dir / "timeline.json").read_text(encoding="utf-8"))
    _, per_level = series(timeline)
    write_csv(report_dir / "timeline.csv", per_level)
    if capacity is None:
        capacity = run_capacity(report_dir, per_level)
    slo = meta.get("slo", {})
    _chart(
        report_dir / "latency.png",
        per_level,
        "p95_ms",
        "p95 latency per level (dotted: the level's p95 limit)",
        "ms",
        {lv: s["p95_ms"] for lv, s in slo.items()},
    )
    _chart(report_dir / "throughput.png", per_level, "rps", "throughput per level", "requests/s")
    _chart(report_dir / "errors.png", per_level, "error_ratio", "error ratio per level", "ratio")
    replicas_img = ""
    if (report_dir / "replicas.json").is_file():
        watched = json.loads((report_dir / "replicas.json").read_text(encoding="utf-8"))
        series_of = {
            f"{what} replicas": [
                {"t": t, "requests": 1, "replicas": float(s[i])}
                for s in watched["samples"]
                for t in [s[0]]
            ]
            for what, i in (("wanted", 1), ("ready", 2))
        }
        _chart(
            report_dir / "replicas.png",
            series_of,
            "replicas",
            f"replicas of {watched['deployment']} (the autoscaler)",
            "replicas",
        )
        replicas_img = '<img src="replicas.png" alt="the hall\'s replicas over time">'

    breached = {(b["level"], b["endpoint"]) for b in gate["breaches"]}
    level_rows = [
        {
            "level": lv,
            **{k: v for k, v in f.items() if k != "slo"},
            **{
                "limits": "p95 {p95_ms:.0f} / p99 {p99_ms:.0f} ms / err {error_ratio:.1%}".format(
                    **f["slo"]
                )
            },
            "_bad": (lv, None) in breached,
        }
        for lv, f in gate["levels"].items()
    ]
    ep_rows = [{**e, "_bad": (e["level"], e["endpoint"]) in breached} for e in gate["endpoints"]]
    kind_names = {"page": "page loads", "asset": "static assets", "api": "API calls"}
    kind_rows = [{"kind": kind_names.get(k, k), **f} for k, f in gate.get("kinds", {}).items()]
    fig_cols = [
        ("requests", "requests"),
        ("failures", "failures"),
        ("error_ratio", "error ratio"),
        ("rps", "req/s"),
        ("p50_ms", "p50 ms"),
        ("p95_ms", "p95 ms"),
        ("p99_ms", "p99 ms"),
    ]
    verdict = (
        '<p class="ok">SLO gate passed</p>'
        if gate["ok"]
        else '<p class="badv">SLO gate FAILED</p><ul>'
        + "".join(f"<li>{html.escape(b['text'])}</li>" for b in gate["breaches"])
        + "</ul>"
    )
    facts = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in meta.items()
        if k != "slo"
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>govcloud load test: {html.escape(str(meta.get("profile", "")))}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1000px; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }}
tr.bad td {{ background: #fdd; }}
.ok {{ color: #1a7f37; font-weight: bold; font-size: 1.3em; }}
.badv {{ color: #c00; font-weight: bold; font-size: 1.3em; }}
</style></head><body>
<h1>Load test of the online halls — {html.escape(str(meta.get("profile", "")))}</h1>
{verdict}
<table>{facts}</table>
<h2>Page loads and API calls</h2>
<p>Citizens in a browser load pages, and a page's static assets the first time they see them;
apps and staff tools call the JSON API.</p>
{_table(kind_rows, [("kind", "kind"), *fig_cols])}
<h2>Per level</h2>
{_table(level_rows, [("level", "level"), *fig_cols, ("limits", "limits")])}
<h2>Over time</h2>
<img src="latency.png" alt="p95 latency per level over time">
<img src="throughput.png" alt="throughput per level over time">
<img src="errors.png" alt="error ratio per level over time">
{replicas_img}
<h2>Per endpoint</h2>
{_table(ep_rows, [("level", "level"), ("endpoint", "endpoint"), *fig_cols])}
{capacity_section(capacity)}
{tls_section(report_dir, (capacity or {}).get("costs"))}
<p>Raw data: <a href="timeline.csv">timeline.csv</a>, locust's <a href="locust.html">HTML
report</a> and <code>stats_*.csv</code>.</p>
</body></html>
"""
    out = report_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out

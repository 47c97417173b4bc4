"""The benchmark reports on the console and in JSON: for ``stream-app bench``, rich tables of the
headline figures against targets and of the profile; for every bench, the console and the JSON file.
"""

from __future__ import annotations

import json
from math import nan
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def _check(met: bool) -> str:
    return "[green]yes[/green]" if met else "[red]no[/red]"


def _target(report: dict[str, Any], name: str, unit: str = "", of: str = "") -> tuple[str, str]:
    """The target's text and whether it was met, as the report computed them."""
    target = report["targets"][name]
    return f"{of}{target['target']}{unit}", _check(target["met"])


def _timed_out(count: int) -> str:
    """What a latency figure lacks: the samples that never arrived before the phase stopped."""
    return f", {count:,} timed out" if count else ""


def summary_table(report: dict[str, Any]) -> Table:
    model, latency, visible = report["model"], report["latency_ms"], report["visibility_ms"]
    rate = report["phases"]["latency"]["offered_events_per_s"]
    json_phase = report["phases"]["throughput_json"]
    table = Table(
        "measure", "result", "target", "met", title="stream-app bench", title_justify="left"
    )
    table.add_row(
        "model",
        f"{model['trees']} trees x {model['leaves']} leaves, {model['features']} features "
        f"(version {model['version']})",
        "",
        "",
    )
    table.add_row("deployment", f"one worker, {report['partitions']} partition(s) per keyed topic")
    table.add_row(
        "throughput, JSON, end to end",
        f"{report['events_per_s']:,.0f} events/s ({json_phase['events']:,} in "
        f"{json_phase['seconds']:.2f} s)",
        *_target(report, "events_per_s", " events/s"),
    )
    published = report["alerts_published"]
    table.add_row(
        "bare single-thread loop",
        f"{report['bare_events_per_s']:,.0f} events/s (same work: {published['bare']:,} alerts, "
        f"the worker {published['worker_json']:,})",
        "",
        "",
    )
    table.add_row(
        "pipeline / bare loop",
        f"{report['ratio_to_bare']:.2f}x",
        *_target(report, "ratio_to_bare", "x"),
    )
    table.add_row(
        "throughput, Avro, end to end",
        f"{report['events_per_s_avro']:,.0f} events/s "
        f"({report['avro_cost_ratio']:.2f}x JSON's cost per event)",
        *_target(report, "avro_cost_ratio", "x JSON's cost"),
    )
    table.add_row(
        f"decision latency at {rate:,.0f} events/s",
        f"p50 {latency.get('p50', nan):.1f} · p95 {latency.get('p95', nan):.1f} · "
        f"p99 {latency.get('p99', nan):.1f} · max {latency.get('max', nan):.1f} ms "
        f"({latency['samples']:,} events{_timed_out(latency.get('missing', 0))})",
        *_target(report, "latency_p99_ms", " ms", "p99 "),
    )
    warmup = report.get("latency_warmup", {}).get("latency_ms")
    if warmup:
        table.add_row(
            "  the paced warm-up before it (not counted)",
            f"p50 {warmup.get('p50', nan):.1f} · p99 {warmup.get('p99', nan):.1f} ms",
            "",
            "",
        )
    split = report["phases"]["latency"].get("latency_split_ms")
    if split:
        first, second = split["to_worker_output"], split["worker_output_to_consumer"]
        table.add_row(
            "  until the worker's output · after it",
            f"p50 {first['p50']:.1f} · p99 {first['p99']:.1f} ms · "
            f"p50 {second['p50']:.1f} · p99 {second['p99']:.1f} ms",
            "",
            "",
        )
    trend = report["phases"]["latency"].get("latency_ms_by_5s", [])
    if len(trend) > 1:
        table.add_row(
            "  p99 by 5 s of the run",
            " · ".join(f"{w['from_s']:.0f}s: {w['p99']:,.0f}" for w in trend) + " ms",
            "",
            "",
        )
        climb = report["latency_climb_ratio"]  # None below two full windows: a short run
        table.add_row(
            "  climb: last 5 s p99 / first",
            "n/a (fewer than two full 5-s windows)" if climb is None else f"{climb:.2f}x",
            *_target(report, "latency_climb_ratio", "x"),
        )
    table.add_row(
        "warehouse visibility",
        f"p50 {visible.get('p50', nan):,.0f} · p99 {visible.get('p99', nan):,.0f} ms "
        f"(±{visible['resolution_ms']:.0f} ms poll, {visible['samples']:,} samples"
        f"{_timed_out(visible.get('timed_out', 0))})",
        *_target(report, "visibility_p99_ms", " ms", "p99 "),
    )
    alerts = report["alert_latency_ms"]
    table.add_row(
        f"alert latency at {rate:,.0f} events/s",
        f"p50 {alerts.get('p50', nan):.1f} · p95 {alerts.get('p95', nan):.1f} · "
        f"p99 {alerts.get('p99', nan):.1f} ms ({alerts['samples']:,} alerts)",
        *_target(report, "alert_latency_p99_ms", " ms", "p99 "),
    )
    table.add_row(
        "hot-swap pause (200-tree model)",
        f"{report['swap_pause_ms']:.2f} ms",
        *_target(report, "swap_pause_ms", " ms"),
    )
    table.add_row(
        "shadow cost (challenger / none)",
        f"{report['shadow_cost_ratio']:.2f}x time per event",
        *_target(report, "shadow_cost_ratio", "x"),
    )
    scale = report["scale"]
    one, two = scale["one_worker"], scale["two_workers"]
    table.add_row(
        "scale-out: CPU per event, 2 workers / 1",
        f"{scale['cpu_ratio']:.2f}x ({one['cpu_s_per_million_events']:.1f} · "
        f"{two['cpu_s_per_million_events']:.1f} CPU-s per million events; "
        f"{one['seconds']:.2f} · {two['seconds']:.2f} s for {scale['events']:,} events; "
        "median of " + " · ".join(f"{r:.2f}x" for r in scale["pair_cpu_ratios"]) + ")",
        *_target(report, "scale_cpu_ratio", "x"),
    )
    table.add_row(
        "  every event scored once",
        f"{one['distinct_events']:,} · {two['distinct_events']:,} distinct of "
        f"{scale['events']:,}; rows {one['stored_rows']:,} · {two['stored_rows']:,}; "
        f"scored {one['scored']:,} · {two['scored']:,}",
        "yes",
        _check(scale["scored_once"]),
    )
    peak = report["peak_rss_mb"]
    table.add_row(
        "peak RSS", f"worker {peak['worker']:,.0f} MB · sink {peak['sink']:,.0f} MB", "", ""
    )
    table.add_row(
        "broker RSS by phase, peak · end",
        ", ".join(
            f"{phase} {rss['peak']:,.0f} · {rss['end']:,.0f}"
            for phase, rss in report["broker_rss_mb"].items()
        )
        + " MB",
        "",
        "",
    )
    soak = report.get("worker_rss_soak")
    if soak:
        table.add_row(
            "worker RSS, soak",
            f"{soak['rss_mb_start']:,.0f} → {soak['rss_mb_end']:,.0f} MB over "
            f"{soak['events']:,.0f} events (highest 5 s sample "
            f"{max([rss for _, rss in soak['rss_mb_series']], default=soak['rss_mb_end']):,.0f}); "
            f"anonymous {soak['rss_anon_mb_start']:,.0f} → {soak['rss_anon_mb_end']:,.0f} MB",
            "",
            "",
        )
    host = report["machine"]
    table.add_row(
        "machine", f"{host['nproc']} CPUs, Python {host['python']}, {host['cpu']}", "", ""
    )
    return table


def profile_table(report: dict[str, Any], process: str) -> Table:
    """Microseconds per event of each stage of ``process`` (worker or sink), JSON and Avro."""
    runs = {
        "JSON": report["phases"]["throughput_json"]["stage_us_per_event"][process],
        "Avro": report["phases"]["throughput_avro"]["stage_us_per_event"][process],
    }
    title = f"{process}: µs per event, by stage (throughput phases)"
    table = Table("stage", *runs, title=title, title_justify="left")
    stages = list(dict.fromkeys(name for stages in runs.values() for name in stages))
    for stage in stages:
        table.add_row(stage, *(f"{run.get(stage, 0.0):.2f}" for run in runs.values()))
    table.add_row("total", *(f"{sum(run.values()):.2f}" for run in runs.values()), style="bold")
    return table


def contention_note(report: dict[str, Any], threshold: float = 0.1) -> str | None:
    """A warning when other processes took more than ``threshold`` of the CPUs in a phase."""
    busy = {
        phase: shares["other_cpu_share"]
        for phase, shares in report.get("contention", {}).items()
        if shares.get("other_cpu_share", 0.0) > threshold
    }
    if not busy:
        return None
    listed = ", ".join(f"{phase} {share:.0%}" for phase, share in busy.items())
    return f"other processes used a share of the CPUs during: {listed}; figures are pessimistic"


def cpu_table(report: dict[str, Any]) -> Table:
    """Shares of the machine's CPUs per phase: ours (broker apart), other processes, kernel."""
    columns = ("own_cpu_share", "broker_cpu_share", "other_cpu_share", "irq_share", "steal_share")
    title = "CPU by phase, share of all CPUs (own includes the broker)"
    table = Table("phase", "own", "broker", "other processes", "irq", "steal", title=title)
    table.title_justify = "left"
    for phase, shares in report.get("contention", {}).items():
        table.add_row(phase, *(f"{shares.get(c, 0.0):.0%}" for c in columns))
    return table


def render(report: dict[str, Any], console: Console, profile: bool) -> None:
    console.print(summary_table(report))
    note = contention_note(report)
    if note:
        console.print(f"[yellow]warning:[/yellow] {note}", highlight=False)
    if profile:
        console.print(profile_table(report, "worker"))
        console.print(profile_table(report, "sink"))
        console.print(cpu_table(report))
        console.print(
            "The sink handles two records per event (the transaction and its prediction); "
            "its consume stage includes its idle waits."
        )


def bench_console() -> Console:
    """The terminal's width on a terminal; 120 columns in a pipe or a log (rich's 80 wraps)."""
    console = Console()
    return console if console.is_terminal else Console(width=120)


def write_json(report: dict[str, Any], json_path: Path | None, console: Console) -> None:
    """Write a bench's JSON document to ``json_path``, if one was asked for, and say so."""
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"wrote {json_path}")

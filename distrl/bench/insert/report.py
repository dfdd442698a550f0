"""The printed report: one line per (writers, batch size), the aim's verdict, the profile."""

from __future__ import annotations

from typing import Any


def format_report(report: dict[str, Any]) -> str:
    """The printed table of ``report`` (the dict ``run`` returns): one line per
    (writers, batch size), the aim's verdict and, with ``--profile``, the
    per-call breakdown. Lines joined with newlines, no trailing one."""
    table = report["table"]
    cpus = report["cpus"]
    lines = [
        f"insert path: W writer actors -> RayReplayClient (max_in_flight_inserts={report['max_in_flight_inserts']}, "
        f"merging up to max_coalesced_items={report['max_coalesced_items']} once k calls are outstanding; "
        f"'off' rows: 0, one call per batch) -> one ReplayServer; real DQN CartPole Transition batches",
        f"table {table['sampler']} sampler, max_size={table['max_size']:,}, {table['rate_limiter']} limiter: "
        f"inserts never wait on sampling, nothing samples (capacity, not a learner-bound run)",
        f"{report['seconds']:g} s measured after {report['warmup_s']:g} s warm-up per row, wall-clock"
        f"{'' if cpus is None else f', {cpus} Ray CPUs'}; transitions counted by the server (info()['inserts']); "
        f"DQN's adder batch is {report['runtime_batch_size']}",
        f"{'writers':>7}{'batch':>7}{'merge':>7}{'transitions/s':>15}{'calls/s':>9}{'items/call':>12}"
        f"{'in-process/s':>14}{'x in-proc':>11}{'backpressure':>14}{'lost':>6}"
        f"  aim >= {report['aim_transitions_per_s']:,}/s",
    ]
    for row in report["rows"]:
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.3f}"
        merge = str(row["max_coalesced_items"]) if row["max_coalesced_items"] else "off"
        lines.append(
            f"{row['writers']:>7}{row['batch_size']:>7}{merge:>7}{row['transitions_per_s']:>15,.0f}"
            f"{row['calls_per_s']:>9,.0f}{row['items_per_call']:>12,.1f}"
            f"{row['in_process_per_s']:>14,.0f}{ratio:>11}{row['backpressure_fraction']:>14.0%}{row['lost']:>6}"
            f"  {'PASS' if row['aim_met'] else 'BELOW AIM'}"
        )
    lines.append(_verdict(report))
    profile = report.get("profile")
    if profile:
        lines.append("profile, 1 writer, coalescing off: wall-clock us per insert call (1e6 / calls/s); "
                     "'flat' sends the same items as one uint8 array")
        lines.append(f"{'batch':>7}  {'payload':<12}{'server':<8}{'calls/s':>9}{'us/call':>9}")
        for row in profile["rows"]:
            lines.append(f"{row['batch_size']:>7}  {row['payload']:<12}{row['server']:<8}"
                         f"{row['calls_per_s']:>9,.0f}{1e6 / max(row['calls_per_s'], 1e-9):>9,.0f}")
        for batch_size, costs in profile["micro_us"].items():
            by_key = {(r["payload"], r["server"]): 1e6 / max(r["calls_per_s"], 1e-9)
                      for r in profile["rows"] if r["batch_size"] == batch_size}
            parts = [f"Table.insert {costs['table_insert_us']:.1f}"]
            if costs["ray_serialize_transition_us"] is not None:
                parts.append(f"Ray serialize transition {costs['ray_serialize_transition_us']:.1f} / "
                             f"flat {costs['ray_serialize_flat_us']:.1f}")
            parts.append(f"pickle dumps {costs['pickle_dumps_us']:.1f} / loads {costs['pickle_loads_us']:.1f}")
            lines.append(f"  batch {batch_size}: in-process us per call: " + ", ".join(parts))
            if len(by_key) == 3:
                fixed = by_key[("flat", "no-op")]
                nest = by_key[("transition", "replay")] - by_key[("flat", "replay")]
                server = by_key[("flat", "replay")] - fixed
                total = by_key[("transition", "replay")]
                lines.append(
                    f"  batch {batch_size}: of {total:,.0f} us per call, Ray's fixed per-call cost (no-op server) "
                    f"{fixed:,.0f} us ({fixed / total:.0%}), the nest's leaves {nest:,.0f} us, "
                    f"the replay server's own work {server:,.0f} us (differences of noisy rates)"
                )
    return "\n".join(lines)


def _verdict(report: dict[str, Any]) -> str:
    """One line: where the aim is met, and how far the runtime's batch size gets."""
    aim = report["aim_transitions_per_s"]
    rows = report["rows"]
    met = sorted({row["batch_size"] for row in rows if row["aim_met"]})
    at_runtime = [row for row in rows if row["batch_size"] == report["runtime_batch_size"]]
    runtime = [row for row in at_runtime if row["max_coalesced_items"]]
    off = [row for row in at_runtime if not row["max_coalesced_items"]]
    parts = [f"aim (>= {aim:,} transitions/s into the replay server):"]
    parts.append(f"met at batch {', '.join(map(str, met))}" if met else "not met at any batch size measured")
    if runtime:
        best = max(row["transitions_per_s"] for row in runtime)
        state = "met" if best >= aim else "NOT met"
        parts.append(f"; at the DQN adder's batch {report['runtime_batch_size']} with coalescing {state} "
                     f"(best {best:,.0f}/s, {best / aim:.0%} of the aim)")
        if off:
            best_off = max(row["transitions_per_s"] for row in off)
            parts.append(f"; coalescing off: best {best_off:,.0f}/s (coalescing gives "
                         f"{best / max(best_off, 1e-9):.1f}x)")
    if report["lost"]:
        parts.append(f"; {report['lost']} submitted items were NOT counted by the server")
    return " ".join(parts[:2]) + "".join(parts[2:])

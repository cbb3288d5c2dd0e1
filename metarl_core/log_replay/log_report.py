"""The log's score as a markdown table (per segment, and the log's breaks) and a plot over time."""

from __future__ import annotations

from pathlib import Path

from metarl_core.log_replay.log_scoring import LogScore
from metarl_core.log_replay.log_transitions import LogBreak


def markdown_report(
    bag: Path, score: LogScore, breaks: list[LogBreak], joint_names: tuple[str, ...], future_window: int
) -> str:
    """The table ``metarl eval --bag`` prints and writes: error per row and segment, breaks,
    adaptations, and the would-be commands' RMS difference from the logged ones per joint."""
    rows = score.rows
    lines = [
        f"# Offline adaptation score: `{bag}`",
        "",
        f"K-future prediction error (K = {future_window}): mean squared error of the normalised state change, "
        "one step each over the K logged transitions after each tick (the metric of `metarl eval` in sim).",
        "",
        "| segment | from (s) | to (s) | transitions | scored ticks | adaptations accepted | "
        + " | ".join(rows)
        + " |",
        "|---" * (6 + len(rows)) + "|",
    ]
    for i, s in enumerate(score.segments):
        values = " | ".join(f"{s.mean(r):.5g}" for r in rows)
        lines.append(
            f"| {i} | {s.start_s:.2f} | {s.end_s:.2f} | {s.transitions} | {len(s.times_s)} "
            f"| {s.adaptations_accepted}/{s.adaptations} | {values} |"
        )
    total = sum(len(s.times_s) for s in score.segments)
    lines.append(
        f"| all | | | {sum(s.transitions for s in score.segments)} | {total} | | "
        + " | ".join(f"{score.mean(r):.5g}" for r in rows)
        + " |"
    )
    lines += ["", f"Breaks in the log: {len(breaks)}" + (":" if breaks else ".")]
    for b in breaks:
        if b.kind == "gap":
            lines.append(f"- gap after t = {b.time_s:.3f} s: next tick {b.step_s * 1e3:.1f} ms later")
        else:
            lines.append(
                f"- rate change from t = {b.time_s:.3f} s to {b.until_s:.3f} s: ticks {b.step_s * 1e3:.1f} ms apart"
            )
    rms = score.command_rms_per_joint()
    names = joint_names if len(joint_names) == len(rms) else tuple(f"action[{i}]" for i in range(len(rms)))
    lines += [
        "",
        "Would-be commands (the bundle's planner on the logged states and references, with the parameters "
        "in force at each tick) against the logged commands, RMS difference:",
        "",
        "| " + " | ".join(names) + " |",
        "|---" * len(names) + "|",
        "| " + " | ".join(f"{v:.4g}" for v in rms) + " |",
    ]
    return "\n".join(lines) + "\n"


def plot_score(score: LogScore, breaks: list[LogBreak], path: Path, title: str) -> None:
    """Each row's K-future error over log time, breaks marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, row in enumerate(score.rows):
        for j, segment in enumerate(score.segments):  # one line per segment: none drawn across a break
            label = row if j == 0 else None
            axis.plot(segment.times_s, segment.errors[row], color=colours[i % len(colours)], label=label, linewidth=1.0)
    for b in breaks:
        axis.axvline(b.time_s, color="grey", linestyle=":", linewidth=0.8)
    axis.set_yscale("log")
    axis.set_xlabel("log time (stamp, s)")
    axis.set_ylabel("K-future prediction error (normalised)")
    axis.set_title(title)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

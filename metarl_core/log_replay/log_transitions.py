"""A recorded log -> (s, a, s') transitions at the bundle's control period, in unbroken segments.

Ticks are put on the control-period grid by their header stamps: a grid point takes the tick
within a quarter period of it, so a log recorded faster than the control rate is subsampled and
jitter is tolerated (the model was trained on transitions one control period long, so that is
the step it is scored on, even where the node itself ticked more often on a faster sensor
stream). A grid point with no tick breaks the log there: a gap (a pause, lost
messages) or a rate change (a stretch logged slower than the control rate) both end a segment,
and each break is reported with its time and the stamp step that caused it. Transitions never
cross a break.

Commands carry no header (``Float64MultiArray``), so the action of transition ``k -> k+1`` is the
last command logged before state ``k+1`` was (a zero-order hold on log time): the command the
robot held while it moved from ``k`` to ``k+1``. For the node's own log that is its answer to
state ``k``. Transitions before the first command are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metarl_core.log_replay.bag_reading import LogReplayError, RecordedLog

GRID_TOLERANCE_PERIODS = 0.25
"""A tick belongs to a grid point when its stamp is within this fraction of a period of it."""


class LogTooShortError(LogReplayError):
    """No unbroken stretch of the log is long enough to adapt on and score."""


@dataclass(frozen=True)
class LogBreak:
    """Where the log breaks: after the tick stamped ``time_s`` (s) the next comes ``step_s`` later."""

    time_s: float
    step_s: float
    kind: str
    """``gap`` (one long step: a pause or lost messages) or ``rate change`` (the log goes on at
    another rate, every step off the control period, until ``until_s``)."""
    until_s: float


@dataclass(frozen=True)
class Segment:
    """One unbroken run of transitions on the control-period grid."""

    times_s: np.ndarray
    """Stamp of each transition's first state (s)."""
    states: np.ndarray
    actions: np.ndarray
    next_states: np.ndarray
    references: np.ndarray
    """The reference at each transition's first state (what the node planned against)."""

    def __len__(self) -> int:
        return len(self.times_s)


def _grid_runs(stamps_s: np.ndarray, period_s: float) -> tuple[list[list[int]], list[LogBreak]]:
    """Indices of ticks on the grid, split into runs of consecutive grid points, and the breaks.

    Ticks between grid points (a log faster than the control rate) are skipped. A step of more
    than one grid point breaks the log; a stretch of such breaks with single ticks between them is
    one rate change."""
    runs: list[list[int]] = [[0]]
    steps: list[tuple[float, float]] = []
    for i in range(1, len(stamps_s)):
        previous = runs[-1][-1]
        offset = (stamps_s[i] - stamps_s[0]) / period_s
        if abs(offset - round(offset)) > GRID_TOLERANCE_PERIODS:
            continue
        grid_step = round((stamps_s[i] - stamps_s[previous]) / period_s)
        if grid_step == 1:
            runs[-1].append(i)
        elif grid_step > 1:
            steps.append((float(stamps_s[previous]), float(stamps_s[i] - stamps_s[previous])))
            runs.append([i])
    breaks: list[LogBreak] = []
    previous_run_single = False
    for (time_s, step_s), run in zip(steps, runs[1:], strict=True):
        if breaks and previous_run_single:  # no step on the period since the last break
            last = breaks[-1]
            breaks[-1] = LogBreak(last.time_s, last.step_s, "rate change", time_s + step_s)
        else:
            breaks.append(LogBreak(time_s, step_s, "gap", time_s + step_s))
        previous_run_single = len(run) == 1
    return runs, breaks


def build_segments(
    log: RecordedLog, control_rate_hz: float, min_transitions: int
) -> tuple[list[Segment], list[LogBreak]]:
    """The log's unbroken segments of at least ``min_transitions`` transitions, and every break.

    :class:`LogTooShortError` when no segment is long enough, with the log's own tick rate so a
    rate mismatch reads as one."""
    period_s = 1.0 / control_rate_hz
    runs, breaks = _grid_runs(log.stamps_s, period_s)
    segments = []
    for run in runs:
        index = np.asarray(run)
        first, after = index[:-1], index[1:]
        held = np.searchsorted(log.command_log_times_s, log.log_times_s[after], side="left") - 1
        keep = held >= 0
        if keep.sum() < min_transitions:
            continue
        first, after, held = first[keep], after[keep], held[keep]
        segments.append(
            Segment(
                log.stamps_s[first],
                log.states[first],
                log.commands[held],
                log.states[after],
                log.references[first],
            )
        )
    if not segments:
        steps = np.diff(log.stamps_s)
        rate = 1.0 / float(np.median(steps)) if len(steps) and np.median(steps) > 0 else float("nan")
        longest = max((len(r) - 1 for r in runs), default=0)
        raise LogTooShortError(
            f"{log.path}: no unbroken stretch of {min_transitions} transitions at {control_rate_hz:g} Hz "
            f"(longest {longest}; the joint states come at {rate:.1f} Hz; {len(breaks)} breaks)"
        )
    return segments, breaks

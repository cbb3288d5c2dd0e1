"""A recorded log -> (s, a, s') transitions at the bundle's control period, in unbroken segments.

Ticks are put on the control-period grid by their header stamps: a grid point takes the tick
within a quarter period of it, so a log recorded faster than the control rate is subsampled and
jitter is tolerated. A grid point with no tick breaks the log there: a gap (a pause, lost
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
    """Where the log breaks: after ``time_s`` (stamp, s) the next tick comes ``step_s`` later."""

    time_s: float
    step_s: float
    kind: str
    """``gap`` (longer than the period: a pause or lost messages) or ``rate change`` (ticks
    closer than the period that fall between grid points, or a stretch at another rate)."""


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
    """Indices of ticks on the grid, split into runs of consecutive grid points, and the breaks."""
    runs: list[list[int]] = [[0]]
    breaks: list[LogBreak] = []
    anchor = stamps_s[0]
    for i in range(1, len(stamps_s)):
        previous = runs[-1][-1]
        steps = (stamps_s[i] - anchor) / period_s
        offset = abs(steps - round(steps))
        if offset > GRID_TOLERANCE_PERIODS:
            continue  # between grid points: a faster log, subsampled (a break shows where none lands)
        grid_step = round((stamps_s[i] - stamps_s[previous]) / period_s)
        if grid_step == 0:
            continue
        if grid_step == 1:
            runs[-1].append(i)
            continue
        step_s = float(stamps_s[i] - stamps_s[previous])
        skipped = np.any(stamps_s[previous + 1 : i] > stamps_s[previous])
        breaks.append(LogBreak(float(stamps_s[previous]), step_s, "rate change" if skipped else "gap"))
        runs.append([i])
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
                log.commands[held].astype(np.float32),
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

"""``metarl bench tick`` reports both schedules from real steps (its figures live in BENCHMARKS.md)."""

from __future__ import annotations

import argparse

import pytest

from benchmarks import tick_bench


def test_tick_bench_reports_both_schedules() -> None:
    section = tick_bench.run(argparse.Namespace(ticks=5))
    rows = [line for line in section.splitlines() if line.startswith("| back to back") or line.startswith("| paced")]
    assert len(rows) == 2
    for row in rows:
        step, adapt, rest = (cell.split(" / ") for cell in row.strip("|").split("|")[1:])
        assert 0.0 < float(step[0]) <= float(step[1])
        assert 0.0 < float(adapt[0]) and 0.0 < float(rest[0])
    assert "`metarl bench tick --ticks 5`" in section


def test_tick_bench_refuses_no_ticks() -> None:
    with pytest.raises(ValueError, match="--ticks=0"):
        tick_bench.run(argparse.Namespace(ticks=0))

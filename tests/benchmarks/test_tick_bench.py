"""``metarl bench tick`` reports both schedules from real steps (its figures live in BENCHMARKS.md)."""

from __future__ import annotations

import argparse

import pytest

from benchmarks import tick_bench


def test_tick_bench_reports_every_schedule_in_both_orderings() -> None:
    section = tick_bench.run(argparse.Namespace(ticks=5, cpu_wake_latency_us=-1, section=None))
    rows = [line for line in section.splitlines() if line.startswith("| adapt ")]
    assert [row.split("|")[1:3] for row in rows] == [
        [f" {ordering} ", f" {schedule} "]
        for ordering in tick_bench.ORDERINGS
        for schedule in ("back to back", "paced, one per 10 ms", "paced, busy-waiting 10 ms")
    ]
    for row in rows:
        command, adapt, rest, whole = (cell.split(" / ") for cell in row.strip("|").split("|")[2:])
        assert 0.0 < float(command[0]) <= float(command[1])
        assert 0.0 < float(adapt[0]) and 0.0 < float(rest[0])
        assert float(command[0]) < float(whole[0]) or "before the plan" in row  # the adaptation after it
    assert "`metarl bench tick --ticks 5`" in section
    assert "adapt after the command ÷ adapt before the plan" in section
    assert section.count("; busy-waiting: ") == len(tick_bench.ORDERINGS)


def test_tick_bench_refuses_no_ticks() -> None:
    with pytest.raises(ValueError, match="--ticks=0"):
        tick_bench.run(argparse.Namespace(ticks=0, cpu_wake_latency_us=-1, section=None))

"""``metarl bench replay`` writes its section from a real synthetic bag (speed is not asserted)."""

from __future__ import annotations

import argparse

from benchmarks.replay_bench import run


def test_replay_bench_reports_every_stage_with_its_command() -> None:
    section = run(argparse.Namespace(ticks=150))
    assert "`metarl bench replay --ticks 150`" in section
    for stage in ("| read |", "| segment |", "| score |", "| all |"):
        assert stage in section
    assert "450 messages" in section

"""Bounded memory: the control tick, run many times in process, keeps its memory flat."""

from __future__ import annotations

from pathlib import Path

from sim.panda_payload import PANDA

from ..ros.untrained_bundles import untrained_bundle
from .controller_soak import run_soak

TICKS = 10_000
HEAP_GROWTH_LIMIT_KB = 32.0
"""A per-tick leak of even 4 bytes would grow the heap by 40 kB over these ticks."""


def test_ten_thousand_ticks_leave_the_python_heap_flat(tmp_path: Path) -> None:
    result = run_soak(untrained_bundle(PANDA, tmp_path / "panda"), TICKS)
    assert result.holds == TICKS // 1000
    growth_kb = result.traced_kb_at_end - result.traced_kb_after_warm_up
    assert growth_kb < HEAP_GROWTH_LIMIT_KB, result
    assert result.objects_at_end - result.objects_after_warm_up < 100, result

"""The training benchmark: its cases parse or are refused by name, its table says what was not
measured, and a small real run (processes and a local Ray instance) fills every cell."""

from __future__ import annotations

import argparse

import pytest
import torch

from benchmarks.train_bench import (
    MetaCase,
    add_arguments,
    crossover,
    describe_load,
    parse_cases,
    render,
    run,
    synthetic_windows,
)


def test_cases_parse_and_bad_ones_are_named() -> None:
    assert parse_cases("8x4@64,64;64x256@32") == [MetaCase(8, 4, (64, 64)), MetaCase(64, 256, (32,))]
    with pytest.raises(SystemExit, match="case '8x4' must read TASKSxWINDOWS@H1,H2"):
        parse_cases("8x4")
    with pytest.raises(SystemExit, match="case '0x4@8': every size must be >= 1"):
        parse_cases("0x4@8")


def test_synthetic_windows_are_the_same_on_every_call() -> None:
    first, second = (synthetic_windows(MetaCase(2, 3, (8,)), torch.device("cpu")) for _ in range(2))
    assert first[0][0].shape == (6, 16, 14) and first[1][1].shape == (6, 16, 7)
    for a, b in zip([*first[0], *first[1]], [*second[0], *second[1]], strict=True):
        assert torch.equal(a, b)


def test_table_shows_a_missing_device_and_the_ratios_to_the_process_backend() -> None:
    case = MetaCase(8, 4, (64, 64))
    text = render(
        "metarl bench train",
        [case],
        ["cpu", "cuda"],
        {("cpu", case): 12.5, ("cuda", case): "not measured: no CUDA device on the machine that ran this"},
        ["process", "ray"],
        [1, 2],
        {("process", 1): 5000.0, ("process", 2): 9000.0, ("ray", 1): 4800.0, ("ray", 2): 8100.0},
    )
    assert "| 8 × 4 | 32 | 64×64 | 12.5 | not measured: no CUDA device on the machine that ran this | – | – |" in text
    assert "cuda crossover: hidden 64×64: not measured" in text
    assert "| process | 5000 | 9000 | 1.80× | – |" in text
    assert "| ray | 4800 | 8100 | 1.69× | 1w 0.96×, 2w 0.90× |" in text


def test_crossover_is_the_batch_from_which_the_gpu_wins_for_good() -> None:
    small, medium, large = MetaCase(8, 4, (64,)), MetaCase(64, 4, (64,)), MetaCase(64, 256, (64,))
    meta = {
        ("cpu", small): 20.0,
        ("cuda", small): 10.0,
        ("cpu", medium): 5.0,
        ("cuda", medium): 9.0,
        ("cpu", large): 0.1,
        ("cuda", large): 4.0,
    }
    assert crossover(meta, "cuda", [large, small, medium]) == "hidden 64: faster from 256 windows on"
    meta["cuda", large] = 0.05
    assert crossover(meta, "cuda", [small, medium, large]) == (
        "hidden 64: not faster at any batch measured (up to 16384 windows)"
    )


def test_a_small_run_measures_every_cell() -> None:
    pytest.importorskip("ray")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--cases",
            "2x2@8",
            "--min-time-s",
            "0.01",
            "--repeats",
            "1",
            "--workers",
            "1",
            "--collect-steps",
            "20",
            "--collect-repeats",
            "1",
            "--collection",
            "process,ray",
        ]
    )
    text = run(args)
    assert "Load average (1 min) before / after the runs:" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1].startswith("| 2 × 2 | 4 | 8 | ")
    if not torch.cuda.is_available():
        assert "| not measured: no CUDA device on the machine that ran this | – | " in rows[1], rows[1]
    assert float(rows[1].split("|")[-2]) > 0, "steps per CPU-second"
    assert rows[3].startswith("| process | ") and rows[4].startswith("| ray | ")
    assert float(rows[4].split("|")[2]) > 0


def test_the_load_note_warns_only_when_other_work_held_the_cores() -> None:
    assert describe_load(0.3, 0.9, cores=2) == "Load average (1 min) before / after the runs: 0.3 / 0.9 on 2 cores."
    assert "understate what free cores give" in describe_load(0.3, 5.0, cores=2)

"""The CLI's own errors: one line, ``metarl: error: …``, naming the file and the field; exit 2,
no traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from metarl.cli import main


def cli_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``metarl argv``, which must fail as a bad input does; return its one-line message."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("metarl: error: "), err
    return lines[0]


def test_missing_config_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert "config file not found: " in cli_error(capsys, ["train", "--config", str(missing)])


def test_unknown_algo_names_the_field_and_choices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("algo: dqn\n", encoding="utf-8")
    assert "algo='dqn' is not one of grbal, grbal-residual, maml-ppo, rl2" in cli_error(
        capsys, ["train", "--config", str(config)]
    )


def test_eval_of_a_directory_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "is not a training run" in cli_error(capsys, ["eval", "--run", str(tmp_path)])


def test_unknown_command_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fly"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"config\.yaml: is empty; expected a mapping with the run's fields"),
        (b"# only a comment\n", r"is empty; expected a mapping"),
        (b"algo: grbal\nplanner: [samples: 3\n", r"malformed YAML at line \d+, column \d+"),
        (b"algo: grbal\n  name: x\n bad", r"malformed YAML"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", r"not a text file"),
        (b"- a\n- b\n", r"must hold a YAML mapping, got list"),
        (b"algo: grbal\nplanner:\n  sampels: 64\n", r"unknown field 'planner\.sampels'"),
        (b"algo: grbal\nplanner:\n  samples: -5\n", r"field 'planner\.samples'=-5 is out of range"),
        (b"algo: grbal\nplanner:\n  horizon: 0\n", r"field 'planner\.horizon'=0 is out of range"),
        (b"algo: grbal\nplanner:\n  temperature: 0.0\n", r"field 'planner\.temperature'=0\.0 is out of range"),
        (b"algo: grbal\nplanner:\n  samples: '64'\n", r"field 'planner\.samples'='64' must be an integer"),
        (b"algo: grbal\nplanner: 5\n", r"field 'planner' must be a mapping"),
        (b"algo: grbal\nouter_lr: -0.001\n", r"field 'outer_lr'=-0\.001 must be > 0"),
        (b"algo: grbal\ninner_lr: 0\n", r"field 'inner_lr'=0 must be > 0"),
        (b"algo: grbal\nhidden_sizes: []\n", r"field 'hidden_sizes'=\[\] must list at least one size"),
        (b"algo: grbal\nhidden_sizes: [64, 0]\n", r"field 'hidden_sizes'"),
        (b"algo: grbal\ntrain_tasks: 0\n", r"field 'train_tasks'=0 must be >= 1"),
        (b"algo: grbal\nepisode_duration_s: -1.0\n", r"field 'episode_duration_s'=-1\.0 must be > 0"),
        (b"algo: rl2\nppo:\n  learning_rate: -1.0\n", r"field 'ppo\.learning_rate'=-1\.0 is out of range"),
        (b"algo: rl2\nhidden_size: 0\n", r"field 'hidden_size'=0 must be >= 1"),
        (b"algo: maml-ppo\nmeta_batch_size: -3\n", r"field 'meta_batch_size'=-3 must be >= 1"),
    ],
)
def test_bad_config_files_give_one_line_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(content)
    line = cli_error(capsys, ["train", "--config", str(config), "--run-dir", str(tmp_path / "run")])
    assert re.search(message, line), line
    assert not (tmp_path / "run").exists(), "a refused config must not start a run"


def test_demo_on_a_device_this_machine_lacks_exits_with_one_line() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit, match=r"^metarl: device 'cuda': CUDA is not available here"):
        main(["demo", "--device", "cuda", "--no-ros"])

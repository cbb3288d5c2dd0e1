"""The CLI's own errors: they name the file and the field, and exit without a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from metarl_core.cli import main


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SystemExit, match=r"config file not found: .*nope\.yaml"):
        main(["train", "--config", str(missing)])


def test_unknown_algo_names_the_field_and_choices(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("algo: dqn\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"algo='dqn' is not one of grbal, maml-ppo, rl2"):
        main(["train", "--config", str(config)])


def test_eval_of_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="is not a training run"):
        main(["eval", "--run", str(tmp_path)])


def test_unknown_command_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fly"])
    assert "invalid choice" in capsys.readouterr().err


def test_demo_on_a_device_this_machine_lacks_exits_with_one_line() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit, match=r"^metarl: device 'cuda': CUDA is not available here"):
        main(["demo", "--device", "cuda", "--no-ros"])

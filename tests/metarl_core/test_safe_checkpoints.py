"""Checkpoints cannot run planted code, a full disk is one line naming the path with no partial
file, and what a killed run leaves behind (temp files, metrics rows past its checkpoint) is
cleared at the next start or resume."""

from __future__ import annotations

import csv
import errno
import os
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from metarl.cli import main
from metarl_core.model_based import train as training
from metarl_core.model_based.checkpoint import load_checkpoint, save_checkpoint
from metarl_core.model_based.train import run_training
from metarl_core.policy.policy_checkpoint import load_policy_checkpoint
from metarl_core.run.checkpoint_io import CheckpointError, CheckpointWriteError, UnsafeCheckpointError

ROOT = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((ROOT / "configs" / "panda_tiny.yaml").read_text())


class PlantedPayload:
    """Pickles as a call that creates ``marker``: if the file exists afterwards, code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def plant_checkpoint(run_dir: Path, marker: Path, algo: str = "grbal") -> Path:
    """A run directory whose checkpoint.pt runs ``marker.touch()`` when unpickled unsafely."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({**TINY, "algo": algo}))
    torch.save(
        {"kind": "policy", "params": {"w": torch.zeros(2)}, "payload": PlantedPayload(marker)},
        run_dir / "checkpoint.pt",
    )
    return run_dir


@pytest.mark.parametrize("loader", [load_checkpoint, load_policy_checkpoint])
def test_a_planted_pickle_payload_is_refused_and_never_runs(tmp_path: Path, loader: Any) -> None:
    marker = tmp_path / "code_ran"
    run = plant_checkpoint(tmp_path / "run", marker)
    with pytest.raises(UnsafeCheckpointError, match=r"checkpoint\.pt: refused: it holds objects other than tensors"):
        loader(run)
    assert not marker.exists(), "the planted payload ran"


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "--run", "{run}", "--out", "{out}"],
        ["train", "--config", "{config}", "--run-dir", "{run}", "--resume"],
    ],
)
def test_export_and_resume_of_a_planted_checkpoint_end_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    marker = tmp_path / "code_ran"
    run = plant_checkpoint(tmp_path / "run", marker)
    names = {"run": str(run), "out": str(tmp_path / "bundle"), "config": str(run / "config.yaml")}
    with pytest.raises(SystemExit) as exited:
        main([a.format(**names) for a in argv])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.startswith("metarl: error: ") and len(err.strip().splitlines()) == 1
    assert "refused: it holds objects other than tensors" in err
    assert not marker.exists() and not (tmp_path / "bundle").exists()


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04truncated"])
def test_a_truncated_or_foreign_checkpoint_is_a_checkpoint_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(content)
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path)


def test_a_checkpoint_of_another_layout_is_named(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=r"not a model-based checkpoint of this layout"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("loader", [load_checkpoint, load_policy_checkpoint])
def test_a_run_without_a_checkpoint_says_to_train_first(tmp_path: Path, loader: Any) -> None:
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at .*checkpoint\.pt: train first"):
        loader(tmp_path)


def test_the_policy_loader_refuses_a_model_based_checkpoint_by_its_kind(tmp_path: Path) -> None:
    torch.save({"training_state": {}, "params": {"w": torch.zeros(2)}}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt is not a policy checkpoint"):
        load_policy_checkpoint(tmp_path)


def write_config(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump({**TINY, "iterations": 3, "gradient_steps_per_iteration": 2, "train_tasks": 2, **changes})
    )
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    return run_training(write_config(root, iterations=1), root / "run", "cpu", resume=False)


class FullDisk:
    """A file object that writes half of what it is given, then fails as a full disk does."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, data: memoryview) -> int:
        self.stream.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def __enter__(self) -> FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.close()


def test_a_full_disk_names_the_path_and_leaves_no_partial_file(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    previous = (trained_run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(previous)
    model, state = load_checkpoint(run)
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    with pytest.raises(CheckpointWriteError, match=r"checkpoint\.pt: could not be written \(No space left on device\)"):
        save_checkpoint(run / "checkpoint.pt", model, state)
    monkeypatch.undo()
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"], "no temp file left"
    assert (run / "checkpoint.pt").read_bytes() == previous, "the previous checkpoint is intact"


def test_a_full_disk_in_the_cli_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    with pytest.raises(SystemExit) as exited:
        main(["train", "--config", str(write_config(tmp_path)), "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert exited.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith("metarl: error: ") and "config.yaml: could not be written (No space left on device)" in err
    assert [p.name for p in (tmp_path / "run").iterdir()] == []


def iterations_logged(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="", encoding="utf-8") as stream:
        return [int(row["iteration"]) for row in csv.DictReader(stream)]


def test_a_resume_after_a_kill_between_metrics_and_checkpoint_has_each_iteration_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after iteration 1's row was logged and before its checkpoint landed (the worst
    instant), with a temp file of the interrupted write left behind: the resume redoes
    iteration 1, and metrics.csv holds 0, 1, 2 once each."""
    config, run = write_config(tmp_path), tmp_path / "run"
    real_save = training.save_checkpoint

    def killed_at_iteration_1(path: Path, model: Any, state: dict[str, Any]) -> None:
        if state["iteration"] == 1:
            (path.parent / ".checkpoint.pt.x1y2.tmp").write_bytes(b"half a checkpo")
            raise KeyboardInterrupt
        real_save(path, model, state)

    monkeypatch.setattr(training, "save_checkpoint", killed_at_iteration_1)
    with pytest.raises(KeyboardInterrupt):
        run_training(config, run, "cpu", resume=False)
    monkeypatch.undo()
    assert iterations_logged(run) == [0, 1]
    run_training(config, run, "cpu", resume=True)
    assert iterations_logged(run) == [0, 1, 2]
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))
    assert load_checkpoint(run)[1]["iteration"] == 2


def test_a_new_run_over_the_leftovers_of_one_killed_before_its_first_checkpoint(tmp_path: Path) -> None:
    config, run = write_config(tmp_path, iterations=1), tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text("iteration,losses/meta_loss\n0,1.0\n1,0.5\n")
    (run / ".config.yaml.abc.tmp").write_text("partial")
    (run / "notes.tmp").write_text("not ours")
    run_training(config, run, "cpu", resume=False)
    assert iterations_logged(run) == [0]
    assert not (run / ".config.yaml.abc.tmp").exists() and (run / "notes.tmp").read_text() == "not ours"


@pytest.mark.parametrize("algo", ["rl2", "maml-ppo"])
def test_a_policy_run_resumed_after_a_kill_has_each_iteration_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, algo: str
) -> None:
    """The policy trainers log an iteration before they checkpoint it: killed in between, the
    resume redoes that iteration and its row is not doubled."""
    from metarl_core.policy import maml_ppo, rl2
    from metarl_core.policy.train import run_training as run_policy_training

    tiny = ROOT / "configs" / ("point_nav_rl2_tiny.yaml" if algo == "rl2" else "point_nav_maml_ppo_tiny.yaml")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**yaml.safe_load(tiny.read_text()), "iterations": 3}))
    trainer = rl2 if algo == "rl2" else maml_ppo
    real_save = trainer.save_policy_checkpoint

    def killed_at_iteration_1(path: Path, policy: Any, state: dict[str, Any]) -> None:
        if state["iteration"] == 1:
            raise KeyboardInterrupt
        real_save(path, policy, state)

    monkeypatch.setattr(trainer, "save_policy_checkpoint", killed_at_iteration_1)
    with pytest.raises(KeyboardInterrupt):
        run_policy_training(config, tmp_path / "run", "cpu", False)
    monkeypatch.undo()
    assert iterations_logged(tmp_path / "run") == [0, 1]
    run_policy_training(config, tmp_path / "run", "cpu", True)
    assert iterations_logged(tmp_path / "run") == [0, 1, 2]


def test_a_full_disk_while_logging_metrics_names_metrics_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from metarl_core.run import run_metrics

    def full_disk(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(run_metrics, "open", full_disk, raising=False)
    with pytest.raises(CheckpointWriteError, match=r"metrics\.csv: could not be written \(No space left on device\)"):
        run_metrics.append_metrics_row(tmp_path / "metrics.csv", 0, {"losses/x": 1.0})

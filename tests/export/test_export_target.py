"""``metarl export --out`` replaces an old bundle atomically and never deletes what it did not write."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from export.graph_export import ExportTargetError
from export.onnx_export import export_trained_dynamics
from metarl_runtime.controllers import load_controller
from tests.conftest import tiny_model


def test_a_directory_that_is_not_a_bundle_is_refused_and_left_whole(tmp_path: Path) -> None:
    target = tmp_path / "my_project"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work")
    with pytest.raises(ExportTargetError, match=r"my_project: exists and is not a bundle written by metarl"):
        export_trained_dynamics(tiny_model(1), target)
    assert [p.name for p in target.iterdir()] == ["thesis.tex"]
    assert (target / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_project"], "no staging directory left behind"


def test_a_bundle_holding_a_file_it_does_not_list_is_refused(bundles: dict, tmp_path: Path) -> None:
    target = Path(shutil.copytree(bundles[1][1], tmp_path / "bundle"))
    (target / "calibration.yaml").write_text("mine")
    with pytest.raises(ExportTargetError, match=r"holds \['calibration\.yaml'\] that its bundle\.json does not list"):
        export_trained_dynamics(tiny_model(1), target)
    assert (target / "calibration.yaml").read_text() == "mine"


def test_a_file_as_target_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    target.write_text("a file")
    with pytest.raises(ExportTargetError, match="exists and is not a bundle directory"):
        export_trained_dynamics(tiny_model(1), target)
    assert target.read_text() == "a file"


def test_an_old_bundle_is_replaced_and_an_empty_directory_filled(bundles: dict, tmp_path: Path) -> None:
    old = Path(shutil.copytree(bundles[2][1], tmp_path / "old"))
    export_trained_dynamics(tiny_model(1), old)
    assert load_controller(old).runtime.manifest.inner_steps == 1
    assert not (tmp_path / ".old.old").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    export_trained_dynamics(tiny_model(1), empty)
    assert (empty / "bundle.json").is_file()


def test_a_full_disk_during_export_names_the_bundle_and_replaces_nothing(
    bundles: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    from export import onnx_export

    old = Path(shutil.copytree(bundles[2][1], tmp_path / "bundle"))
    before = {p.name: p.read_bytes() for p in old.iterdir()}

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(onnx_export.np, "savez", full_disk)
    with pytest.raises(OSError, match=r"bundle: bundle could not be written \(No space left on device\); nothing was"):
        export_trained_dynamics(tiny_model(1), old)
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"], "no staging directory left behind"

"""``algo: grbal-residual`` training: a run resumed after a kill ends where one never stopped does,
and its checkpoint exports to a bundle the robot's controller loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from export.residual_export import export_residual_bundle
from metarl_core.model_based.residual_model import load_residual_checkpoint
from metarl_core.model_based.residual_train import ResidualConfig, run_residual_training
from metarl_runtime.controllers import ResidualComputedTorqueController, load_controller

TINY = Path(__file__).resolve().parents[2] / "configs" / "panda_residual_tiny.yaml"


def config_with(tmp_path: Path, name: str, **fields: object) -> Path:
    data = {**yaml.safe_load(TINY.read_text(encoding="utf-8")), **fields}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.slow
def test_resumed_run_equals_the_uninterrupted_one_and_exports(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    straight = run_residual_training(config_with(tmp_path, "a", iterations=2), tmp_path / "a", "cpu", False)
    first = run_residual_training(config_with(tmp_path, "b", iterations=1), tmp_path / "b", "cpu", False)
    resumed = run_residual_training(config_with(tmp_path, "b", iterations=2), first, "cpu", True)
    expected, _ = load_residual_checkpoint(straight)
    got, state = load_residual_checkpoint(resumed)
    assert state["iteration"] == 1
    for name, value in expected.params.items():
        torch.testing.assert_close(got.params[name], value, rtol=0, atol=0)
    controller = load_controller(export_residual_bundle(resumed, tmp_path / "bundle"), "panda")
    assert isinstance(controller, ResidualComputedTorqueController)


def test_an_unknown_rule_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="field 'adaptation'='newton' must be one of"):
        ResidualConfig.from_yaml(config_with(tmp_path, "bad", adaptation="newton"))


def test_a_forgetting_factor_outside_zero_to_one_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"field 'rls_forgetting'=1\.2 must be in \(0, 1\]"):
        ResidualConfig.from_yaml(config_with(tmp_path, "bad", rls_forgetting=1.2))


def test_a_deployed_forgetting_factor_outside_zero_to_one_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"field 'deployed_rls_forgetting'=1\.5 must be in \(0, 1\]"):
        ResidualConfig.from_yaml(config_with(tmp_path, "bad", adaptation="rls", deployed_rls_forgetting=1.5))


def test_the_robot_gets_the_deployed_precision_and_forgetting_and_training_keeps_its_own(tmp_path: Path) -> None:
    """0 (the default) deploys what meta-training used; a set value replaces it in the bundle only."""
    fields = {"adaptation": "rls", "rls_prior_precision": 1.0, "rls_forgetting": 0.4}
    trained = ResidualConfig.from_yaml(config_with(tmp_path, "same", **fields))
    assert trained.deployed_adaptation() == trained.inner_adaptation()
    deployed = ResidualConfig.from_yaml(
        config_with(tmp_path, "deployed", **fields, deployed_rls_prior_precision=0.03, deployed_rls_forgetting=0.15)
    )
    assert (deployed.inner_adaptation().rls_prior_precision, deployed.inner_adaptation().rls_forgetting) == (1.0, 0.4)
    robot = deployed.deployed_adaptation()
    assert (robot.rls_prior_precision, robot.rls_forgetting) == (0.03, 0.15)


def test_the_forgetting_factor_goes_from_the_config_through_the_checkpoint_into_the_bundle(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    config = config_with(tmp_path, "forgetting", iterations=1, adaptation="rls", rls_forgetting=0.4)
    run = run_residual_training(config, tmp_path / "run", "cpu", False)
    model, _ = load_residual_checkpoint(run)
    assert model.adaptation is not None and model.adaptation.rls_forgetting == 0.4
    controller = load_controller(export_residual_bundle(run, tmp_path / "bundle"), "panda")
    assert controller.runtime.manifest.rls_forgetting == 0.4


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"adaptation": "gradient", "deployed_warm_start": 1.0}, r"'deployed_warm_start'=1\.0 must be in \[0, 1\)"),
        ({"adaptation": "rls", "deployed_warm_start": 0.5}, r"'deployed_warm_start' is the gradient rule's, not 'rls'"),
    ],
)
def test_a_warm_start_outside_zero_to_one_or_on_another_rule_is_refused(
    tmp_path: Path, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ResidualConfig.from_yaml(config_with(tmp_path, "bad", **fields))


def test_the_warm_start_goes_from_the_config_through_the_checkpoint_into_the_bundle(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    config = config_with(tmp_path, "warm", iterations=1, adaptation="gradient", deployed_warm_start=0.9)
    run = run_residual_training(config, tmp_path / "run", "cpu", False)
    model, _ = load_residual_checkpoint(run)
    assert model.warm_start == 0.9
    controller = load_controller(export_residual_bundle(run, tmp_path / "bundle"), "panda")
    assert controller.runtime.manifest.gradient_warm_start == 0.9

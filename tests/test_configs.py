"""Every shipped config loads with the trainer its ``algo`` names: a typo in one is caught here,
not after a user has waited for training to reach it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from metarl_core.model_based.config import GrBALConfig
from metarl_core.model_based.residual_train import ResidualConfig
from metarl_core.policy.train import load_policy_config
from metarl_runtime.mppi import MPPIConfig

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads(path: Path) -> None:
    algo = yaml.safe_load(path.read_text(encoding="utf-8"))["algo"]
    if algo == "grbal":
        config = GrBALConfig.from_yaml(path)
    elif algo == "grbal-residual":
        config = ResidualConfig.from_yaml(path)
    else:
        config = load_policy_config(path)
    assert config.algo == algo and config.name == path.stem


def test_a_planner_typo_is_refused_at_load_naming_the_field_and_the_file(tmp_path: Path) -> None:
    """``planner.horizn`` must not run with the default horizon: the YAML's ``planner`` mapping
    is read through the strict ``MPPIConfig`` when the config loads."""
    path = tmp_path / "typo.yaml"
    path.write_text("algo: grbal\nname: typo\nplanner:\n  horizn: 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{path}: unknown field 'planner.horizn'")):
        GrBALConfig.from_yaml(path)


def test_planner_settings_not_given_are_the_planners_own_defaults(tmp_path: Path) -> None:
    path = tmp_path / "short.yaml"
    path.write_text("algo: grbal\nname: short\nplanner:\n  horizon: 3\n", encoding="utf-8")
    assert GrBALConfig.from_yaml(path).planner == dataclasses.replace(MPPIConfig(), horizon=3)

"""Every shipped config loads with the trainer its ``algo`` names: a typo in one is caught here,
not after a user has waited for training to reach it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from metarl_core.model_based.config import GrBALConfig
from metarl_core.policy.train import load_policy_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads(path: Path) -> None:
    algo = yaml.safe_load(path.read_text(encoding="utf-8"))["algo"]
    config = GrBALConfig.from_yaml(path) if algo == "grbal" else load_policy_config(path)
    assert config.algo == algo and config.name == path.stem

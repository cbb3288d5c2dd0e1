"""``metarl bench switch``: a saved run through a payload switch, tabled with the honest headline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.switch_bench import ADAPTATION_OFF, ADAPTATION_ON, parse_overrides, payload_urdf, switch_section
from metarl_core.model_based.checkpoint import save_checkpoint
from metarl_core.model_based.evaluate import NOMINAL
from metarl_core.model_based.residual_train import panda_nominal
from metarl_core.run.checkpoint_io import CHECKPOINT_NAME
from metarl_runtime.rigid_body import RigidBodyModel
from sim.panda_payload import PANDA
from sim.tasks import PandaTask
from tests.conftest import tiny_model


def test_planner_overrides_are_parsed_as_yaml_and_a_malformed_one_is_refused() -> None:
    assert parse_overrides(["model_inverse_integral_gain=500", "model_inverse=true"]) == {
        "model_inverse_integral_gain": 500,
        "model_inverse": True,
    }
    with pytest.raises(SystemExit, match="expected KEY=VALUE"):
        parse_overrides(["model_inverse_integral_gain"])


@pytest.mark.slow
def test_section_tables_every_controller_and_the_nominal_one_never_recovers(tmp_path: Path) -> None:
    run = tmp_path / "run"
    save_checkpoint(run / CHECKPOINT_NAME, tiny_model(1), training_state={})
    section = switch_section([run], 1, {}, "metarl bench switch (test)", scenarios=((0.0, 4.0),))
    assert "**0 → 4 kg**" in section
    rows = {line.split(" | ")[0][2:]: line for line in section.splitlines() if line.startswith("| ")}
    for name in (ADAPTATION_ON, ADAPTATION_OFF, NOMINAL):
        assert name in rows, f"no row for {name!r}"
    # The payload-free nominal controller settles far higher after 4 kg: never back at its error before.
    assert rows[NOMINAL].split(" | ")[1].startswith("∞")


def test_the_oracle_model_holds_the_tasks_payload_on_the_last_body_and_nothing_else() -> None:
    nominal = panda_nominal()
    held = nominal.held_positions
    task = PandaTask(payload_mass_kg=2.5, payload_com_offset_m=(0.01, 0.0, 0.02))
    plain = RigidBodyModel.from_urdf(nominal.urdf, PANDA.joint_names, held)
    loaded = RigidBodyModel.from_urdf(payload_urdf(nominal.urdf, task), PANDA.joint_names, held)
    np.testing.assert_allclose(loaded.mass_kg - plain.mass_kg, [0, 0, 0, 0, 0, 0, 2.5])
    assert payload_urdf(nominal.urdf, PandaTask()) == nominal.urdf

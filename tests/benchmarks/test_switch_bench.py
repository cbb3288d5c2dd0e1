"""``metarl bench switch``: a saved run through a payload switch, tabled with the honest headline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.switch_bench import (
    ADAPTATION_OFF,
    ADAPTATION_ON,
    SwitchingOracle,
    bundle_oracle,
    parse_overrides,
    payload_urdf,
    switch_section,
)
from export.residual_export import export_trained_residual
from metarl_core.model_based.checkpoint import save_checkpoint
from metarl_core.model_based.evaluate import NOMINAL
from metarl_core.model_based.residual_train import panda_nominal
from metarl_core.run.checkpoint_io import CHECKPOINT_NAME
from metarl_runtime.controllers import load_controller
from metarl_runtime.rigid_body import RigidBodyModel
from sim.baseline_controllers import PandaPDGravityController
from sim.panda_payload import PANDA
from sim.scenarios.payload_switch import SWITCH_S, ObservationController, run_payload_switch, summarize
from sim.tasks import PandaTask
from tests.conftest import tiny_model
from tests.export.test_residual_bundle import tiny_residual


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


def test_the_switching_oracle_is_told_the_payload_at_the_switch_tick_and_recovers(tmp_path: Path) -> None:
    """Its model is the task's from the tick the payload lands: the commands before the switch are
    those of the payload-free oracle, and it is back at its error before within the smoothing window
    where the fixed nominal controller never is."""
    bundle = export_trained_residual(tiny_residual("rls"), tmp_path / "bundle")
    controller = load_controller(bundle, "panda")
    switch_tick = round(SWITCH_S * PANDA.control_rate_hz)
    after = PandaTask(payload_mass_kg=4.0)
    oracle = SwitchingOracle(bundle_oracle(bundle, controller, PandaTask()), after, switch_tick)
    plain = bundle_oracle(bundle, controller, PandaTask())
    oracle.reset()
    rng = np.random.default_rng(0)
    for _ in range(switch_tick):
        state = rng.uniform(-0.5, 0.5, 14)
        reference = state + rng.normal(scale=1e-3, size=14)  # a small error: commands inside the limits
        np.testing.assert_array_equal(oracle(state, reference), plain(state, reference))
    assert not np.allclose(oracle(state, reference), plain(state, reference)), "the payload never reached its model"

    rate = PANDA.control_rate_hz
    told = summarize(run_payload_switch(oracle, seed=3)[0], rate)
    nominal = summarize(run_payload_switch(ObservationController(PandaPDGravityController()), seed=3)[0], rate)
    assert told["recovery_s"] <= 0.3 and np.isinf(nominal["recovery_s"]), (told, nominal)


def test_the_late_oracle_knows_the_payload_from_the_tick_after_it_lands(tmp_path: Path) -> None:
    """The soonest a sensor-driven controller can know it: the switch tick's command is still the
    payload-free oracle's, the next one is the told oracle's."""
    bundle = export_trained_residual(tiny_residual("rls"), tmp_path / "bundle")
    controller = load_controller(bundle, "panda")
    switch_tick = 3
    after = PandaTask(payload_mass_kg=4.0)
    late = SwitchingOracle(bundle_oracle(bundle, controller, PandaTask()), after, switch_tick + 1)
    told = SwitchingOracle(bundle_oracle(bundle, controller, PandaTask()), after, switch_tick)
    plain = bundle_oracle(bundle, controller, PandaTask())
    for oracle in (late, told, plain):
        oracle.reset()
    rng = np.random.default_rng(1)
    for tick in range(switch_tick + 2):
        state = rng.uniform(-0.5, 0.5, 14)
        reference = state + rng.normal(scale=1e-3, size=14)
        commands = [oracle(state, reference) for oracle in (late, told, plain)]
        expected = commands[2] if tick <= switch_tick else commands[1]
        np.testing.assert_array_equal(commands[0], expected, err_msg=f"tick {tick}")
    assert not np.allclose(commands[1], commands[2]), "the payload never reached the told oracle's model"

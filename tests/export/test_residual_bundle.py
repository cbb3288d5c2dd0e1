"""``mode: residual`` bundles: torch and the robot's numpy + ONNX runtime agree on the residual and
on every adaptation rule; the controller closes the loop on the simulated Panda; a hostile bundle
(its nominal URDF above all) is refused naming the file and field."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import deque
from collections.abc import Callable
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch

import sim  # noqa: F401  (registers the environment ids)
from export.residual_export import NOMINAL_URDF_NAME, export_trained_residual
from metarl_core.model_based.adaptation import Adaptation
from metarl_core.model_based.dynamics_model import init_mlp
from metarl_core.model_based.residual_model import (
    RESIDUAL_RULES,
    RegressionWindow,
    ResidualStats,
    TrainedResidual,
    adapt_residual,
    physical_parameters,
    predict_residual,
)
from metarl_core.model_based.residual_train import panda_nominal
from metarl_runtime.bundle_manifest import BundleIntegrityError, BundleSchemaError
from metarl_runtime.controllers import ResidualComputedTorqueController, load_controller
from metarl_runtime.model_runtime import WindowError
from metarl_runtime.residual_torque import residual_inputs
from sim.panda_payload import PANDA
from sim.tasks import PandaTask
from tests.conftest import read_manifest_data, write_manifest_data

WINDOW = 6


def tiny_residual(rule: str, seed: int = 0) -> TrainedResidual:
    """A Panda residual model with small hidden layers, statistics of random motion and a random
    physical prior: untrained, but every number non-trivial."""
    rng = np.random.default_rng(seed)
    nominal = panda_nominal()
    arm = nominal.arm(PANDA.joint_names, 1.0 / PANDA.control_rate_hz)
    q, qd, qdd = rng.uniform(-1, 1, (64, 7)), rng.uniform(-1, 1, (64, 7)), rng.uniform(-5, 5, (64, 7))
    stats = ResidualStats.fit(residual_inputs(q, qd, qdd), (rng.normal(size=(64, 7)) * 3).astype(np.float32))
    params = init_mlp((28, 16, 16, 7), torch.Generator().manual_seed(seed))
    step_sizes = {k: torch.full_like(v, 0.02) for k, v in params.items()}
    width = arm.design_width
    return TrainedResidual(
        robot=PANDA,
        hidden_sizes=(16, 16),
        params=params,
        stats=stats,
        window_size=WINDOW,
        rule=rule,
        adaptation=None if rule == "physical" else Adaptation(rule, 1, 0.5, 0.6),  # type: ignore[arg-type]
        step_sizes=step_sizes,
        physical_prior={
            "mean": torch.from_numpy(rng.normal(size=width) * 0.1).float(),
            "log_precision": torch.from_numpy(rng.normal(size=width) * 0.5).float(),
        },
        nominal=nominal,
    )


def random_window(controller: ResidualComputedTorqueController, seed: int) -> tuple:
    """Residual pairs of ``WINDOW`` random transitions, as the controller builds them."""
    rng = np.random.default_rng(seed)
    states = rng.uniform(-1, 1, (WINDOW, 14)).astype(np.float32)
    next_states = states + rng.normal(scale=0.01, size=states.shape).astype(np.float32)
    actions = rng.uniform(-10, 10, (WINDOW, 7)).astype(np.float32)
    return controller.runtime.nominal.regression_pairs(states, actions, next_states)


WARM_START = 0.5
"""The warm-started gradient bundle's pull-back: far from 0 and 1, so both of its terms count."""


@pytest.fixture(scope="module", params=[*RESIDUAL_RULES, "gradient-warm"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    rule, warm = request.param.removesuffix("-warm"), request.param.endswith("-warm")
    model = dataclasses.replace(tiny_residual(rule), warm_start=WARM_START if warm else 0.0)
    bundle = export_trained_residual(model, tmp_path_factory.mktemp(request.param) / "bundle")
    return model, bundle


def test_runtime_residual_and_adaptation_match_torch(exported: tuple) -> None:
    model, bundle = exported
    controller = load_controller(bundle, "panda")
    assert isinstance(controller, ResidualComputedTorqueController)
    pairs = random_window(controller, seed=1)
    stats = model.stats.torch()
    window = RegressionWindow(*(torch.from_numpy(np.asarray(a, np.float32)) for a in pairs))
    expected = predict_residual(model.params, window.inputs, stats).numpy()
    np.testing.assert_allclose(
        controller.runtime.mlp_residual(controller.runtime.meta_params, pairs.inputs), expected, rtol=1e-4, atol=1e-4
    )
    result = controller.runtime.adapt(pairs)
    assert result.accepted and result.loss_after < result.loss_before
    if model.rule == "physical":
        theta = physical_parameters(model.params, model.physical_prior, window, stats).numpy()
        np.testing.assert_allclose(result.params[-1], theta, rtol=1e-3, atol=1e-4)
    else:
        adapted = adapt_residual(model.params, window.inputs, window.targets, stats, model.adaptation, model.step_sizes)
        for name, value in zip(model.parameter_names(), result.params, strict=True):
            np.testing.assert_allclose(value, adapted[name].detach().numpy(), rtol=1e-3, atol=1e-4, err_msg=name)


def test_a_warm_started_step_starts_from_the_last_parameters_pulled_back_toward_the_meta_ones(
    tmp_path: Path,
) -> None:
    model = dataclasses.replace(tiny_residual("gradient"), warm_start=WARM_START)
    controller = load_controller(export_trained_residual(model, tmp_path / "bundle"), "panda")
    runtime, pairs = controller.runtime, random_window(controller, seed=3)
    rng = np.random.default_rng(4)
    last = [(p + rng.normal(scale=0.05, size=p.shape)).astype(np.float32) for p in runtime.meta_params]
    result = runtime.adapt(pairs, last=last)
    start = {
        name: torch.from_numpy(meta + WARM_START * (mine - meta))
        for name, meta, mine in zip(model.parameter_names(), runtime.meta_params, last, strict=True)
    }
    stats = model.stats.torch()
    window = RegressionWindow(*(torch.from_numpy(np.asarray(a, np.float32)) for a in pairs))
    adapted = adapt_residual(start, window.inputs, window.targets, stats, model.adaptation, model.step_sizes)
    for name, value in zip(model.parameter_names(), result.params, strict=True):
        np.testing.assert_allclose(value, adapted[name].detach().numpy(), rtol=1e-3, atol=1e-4, err_msg=name)
    cold = dataclasses.replace(model, warm_start=0.0)
    cold_runtime = load_controller(export_trained_residual(cold, tmp_path / "cold"), "panda").runtime
    from_meta = cold_runtime.adapt(pairs, last=last)  # no warm start: `last` is not used
    for got, expected in zip(from_meta.params, cold_runtime.adapt(pairs).params, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_warm_started_steps_accumulate_where_one_step_from_the_meta_parameters_falls_short(
    tmp_path: Path,
) -> None:
    # The reason for the warm start: on a window that keeps asking for the same change, each
    # tick's step goes on from the last, so the window loss falls below what one step reaches.
    model = dataclasses.replace(tiny_residual("gradient"), warm_start=0.95)
    controller = load_controller(export_trained_residual(model, tmp_path / "bundle"), "panda")
    runtime, pairs = controller.runtime, random_window(controller, seed=5)
    one_step = runtime.adapt(pairs)
    result = one_step
    for _ in range(20):
        result = runtime.adapt(pairs, last=result.params)
        assert result.accepted and all(np.all(np.isfinite(p)) for p in result.params)
    assert result.loss_after < 0.75 * one_step.loss_after  # measured: 6.4 against 10.9 (the pull-back's level)


@pytest.mark.parametrize(
    ("rule", "value", "message"),
    [
        ("gradient", 1.0, r"field 'gradient_warm_start'=1\.0 must be a number in \[0, 1\)"),
        ("gradient", -0.1, r"field 'gradient_warm_start'=-0\.1 must be a number in \[0, 1\)"),
        ("gradient", "0.5", r"field 'gradient_warm_start'='0\.5' must be a number in \[0, 1\)"),
        ("rls", 0.5, r"field 'gradient_warm_start'=0\.5 is the gradient rule's, not 'rls''s"),
    ],
)
def test_a_hostile_warm_start_is_refused_naming_the_field(
    tmp_path: Path, rule: str, value: object, message: str
) -> None:
    bundle = export_trained_residual(tiny_residual(rule), tmp_path / "bundle")
    data = read_manifest_data(bundle)
    data["gradient_warm_start"] = value
    write_manifest_data(bundle, data)
    with pytest.raises(BundleSchemaError, match=message):
        load_controller(bundle, "panda")


def test_design_is_needed_by_the_physical_rule_only(exported: tuple) -> None:
    # The controller leaves the design out for RLS and gradient (most of a tick's time on the
    # robot): their adaptation is the same without it; the physical rule refuses a window without.
    model, bundle = exported
    controller = load_controller(bundle, "panda")
    full = random_window(controller, seed=2)
    empty = full._replace(design=np.zeros((WINDOW, 7, 0), np.float32))
    if model.rule == "physical":
        with pytest.raises(WindowError, match="residual window shapes"):
            controller.runtime.adapt(empty)
        return
    with_design, without = controller.runtime.adapt(full), controller.runtime.adapt(empty)
    assert without.accepted and without.loss_after == with_design.loss_after
    for a, b in zip(with_design.params, without.params, strict=True):
        assert np.array_equal(a, b)
    truncated = full._replace(design=full.design[..., :3])  # neither empty nor the full width
    with pytest.raises(WindowError, match="residual window shapes"):
        controller.runtime.adapt(truncated)


def drive_simulated_panda(step: Callable[[np.ndarray], np.ndarray], payload_kg: float, ticks: int, seed: int) -> None:
    """``ticks`` commands of ``step(observation)`` applied to the simulated Panda carrying ``payload_kg``."""
    env = gymnasium.make("metarl/PandaPayload-v0", episode_duration_s=ticks / 100.0 + 0.1)
    env.unwrapped.set_task(PandaTask(payload_mass_kg=payload_kg))
    obs, _ = env.reset(seed=seed)
    try:
        for _ in range(ticks):
            obs, *_ = env.step(step(obs).astype(np.float32))
    finally:
        env.close()


def test_controller_commands_stay_finite_within_limits_and_adapt_on_the_simulated_panda(exported: tuple) -> None:
    _, bundle = exported
    controller = load_controller(bundle, "panda")

    def step(obs: np.ndarray) -> np.ndarray:
        command = controller(obs[:14], obs[14:])
        assert np.all(np.isfinite(command))
        assert np.all(command >= controller.low) and np.all(command <= controller.high)
        return command

    drive_simulated_panda(step, payload_kg=2.0, ticks=30, seed=5)
    # Adaptation starts at the third tick, the first with two transitions in the window.
    assert controller.stats.attempts == 28 and controller.stats.accepted > 0


class PlainResidualStep:
    """The controller's algorithm written plainly, as it was before its pairs were cached: the
    raw transitions of the last M, their residual pairs recomputed from the whole window every
    tick (``regression_pairs``) and the command's nominal torque alone."""

    def __init__(self, controller: ResidualComputedTorqueController) -> None:
        self.runtime, self.low, self.high = controller.runtime, controller.low, controller.high
        self.period_s = controller.period_s
        self.window: deque = deque(maxlen=self.runtime.manifest.window_size)
        self.params = self.runtime.meta_params
        self.previous: tuple | None = None
        self.previous_velocity: np.ndarray | None = None

    def __call__(self, state: np.ndarray, reference: np.ndarray) -> np.ndarray:
        state, reference = np.asarray(state, np.float32), np.asarray(reference, np.float64)
        if self.previous is not None:
            self.window.append((*self.previous, state))
        if len(self.window) >= 2:
            arrays = (np.stack(x) for x in zip(*self.window, strict=True))
            pairs = self.runtime.nominal.regression_pairs(*arrays, with_design=self.runtime.physical)
            self.params = self.runtime.adapt(pairs, last=self.params).params
        velocity = reference[7:]
        previous = self.previous_velocity
        acceleration = np.zeros(7) if previous is None else (velocity - previous) / self.period_s
        self.previous_velocity = velocity
        nominal, motion = self.runtime.nominal, state.astype(np.float64)
        q, qd = motion[:7], motion[7:]
        qdd_des = nominal.desired_acceleration(q, qd, reference[:7], velocity, acceleration)
        torque = self.runtime.command_torque(
            self.params, q, qd, qdd_des, velocity, nominal.feedforward(q, qd, qdd_des, velocity)
        )
        command = np.clip(torque, self.low, self.high)
        self.previous = (state, command.astype(np.float32))
        return command


def test_cached_pairs_and_batched_inverse_dynamics_give_the_plain_algorithms_commands_exactly(exported: tuple) -> None:
    # The controller computes each pair once and batches the newest with its command's inverse
    # dynamics (a tick's main cost): every command must be the plain algorithm's, bit for bit.
    _, bundle = exported
    controller = load_controller(bundle, "panda")
    plain = PlainResidualStep(controller)

    def step(obs: np.ndarray) -> np.ndarray:
        command = controller(obs[:14], obs[14:])
        np.testing.assert_array_equal(command, plain(obs[:14], obs[14:]))
        return command

    drive_simulated_panda(step, payload_kg=2.5, ticks=40, seed=7)
    assert controller.stats.accepted > 0


def test_a_non_finite_state_gives_the_hold_and_no_transition(exported: tuple) -> None:
    _, bundle = exported
    controller = load_controller(bundle, "panda")
    state, reference = np.zeros(14, np.float32), np.zeros(14)
    controller(state, reference)
    bad = state.copy()
    bad[3] = np.nan
    np.testing.assert_array_equal(controller(bad, reference), np.zeros(7))
    assert controller.previous is None and len(controller.window) == 0


def test_adaptation_off_keeps_the_meta_parameters(exported: tuple) -> None:
    _, bundle = exported
    controller = load_controller(bundle, "panda", adaptation_enabled=False)
    for _ in range(3):
        controller(np.zeros(14, np.float32), np.zeros(14))
    assert controller.stats.attempts == 0 and controller.params is controller.runtime.meta_params


@pytest.fixture
def rls_bundle(tmp_path: Path) -> Path:
    return export_trained_residual(tiny_residual("rls"), tmp_path / "bundle")


def rehash(bundle: Path, name: str) -> None:
    data = read_manifest_data(bundle)
    data["files"][name] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    write_manifest_data(bundle, data)


def test_a_changed_nominal_urdf_is_refused_by_its_hash(rls_bundle: Path) -> None:
    urdf = rls_bundle / NOMINAL_URDF_NAME
    urdf.write_text(urdf.read_text().replace('<mass value="2.7"/>', '<mass value="9.7"/>'))
    with pytest.raises(BundleIntegrityError, match=NOMINAL_URDF_NAME):
        load_controller(rls_bundle, "panda")


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        (('<mass value="2.7"/>', '<mass value="heavy"/>'), "link 'panda_link1' <inertial> <mass value>"),
        (("<robot", '<!DOCTYPE r [<!ENTITY a "b">]><robot'), "DOCTYPE"),
        (('name="panda_joint3"', 'name="panda_jointX"'), "'panda_joint3' is not a movable joint"),
    ],
)
def test_a_hostile_nominal_urdf_is_refused_naming_the_file(rls_bundle: Path, replace: tuple, message: str) -> None:
    urdf = rls_bundle / NOMINAL_URDF_NAME
    urdf.write_text(urdf.read_text().replace(*replace, 1))
    rehash(rls_bundle, NOMINAL_URDF_NAME)
    with pytest.raises(BundleSchemaError, match=f"{NOMINAL_URDF_NAME}: .*{message}".replace("(", r"\(")):
        load_controller(rls_bundle, "panda")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kp_per_s2", -1.0, "nominal.kp_per_s2"),
        ("damping_nms", [0.5] * 6, "nominal.damping_nms"),
        ("urdf_file", "other.urdf", "'nominal.urdf_file'='other.urdf' is not listed"),
    ],
)
def test_hostile_nominal_numbers_are_refused_naming_the_field(
    rls_bundle: Path, field: str, value: object, message: str
) -> None:
    data = read_manifest_data(rls_bundle)
    data["nominal"][field] = value
    write_manifest_data(rls_bundle, data)
    with pytest.raises((BundleSchemaError, BundleIntegrityError), match=message):
        load_controller(rls_bundle, "panda")


def test_a_residual_bundle_refuses_a_forgetting_factor_outside_zero_to_one(rls_bundle: Path) -> None:
    data = read_manifest_data(rls_bundle)
    data["rls_forgetting"] = -0.3
    write_manifest_data(rls_bundle, data)
    with pytest.raises(BundleSchemaError, match=r"field 'rls_forgetting'=-0\.3 must be a number in \(0, 1\]"):
        load_controller(rls_bundle, "panda")


def test_a_physical_prior_of_another_width_is_refused(tmp_path: Path) -> None:
    bundle = export_trained_residual(tiny_residual("physical"), tmp_path / "bundle")
    data = read_manifest_data(bundle)
    data["physical_prior"]["mean"] = data["physical_prior"]["mean"][:-1]
    write_manifest_data(bundle, data)
    with pytest.raises(BundleSchemaError, match=r"physical_prior\.mean has 30 entries, expected 31"):
        load_controller(bundle, "panda")


def test_a_gradient_bundle_without_its_adaptation_graph_is_refused(tmp_path: Path) -> None:
    bundle = export_trained_residual(tiny_residual("gradient"), tmp_path / "bundle")
    data = read_manifest_data(bundle)
    del data["files"]["adapt.onnx"]
    (bundle / "adapt.onnx").unlink()
    write_manifest_data(bundle, data)
    with pytest.raises(BundleIntegrityError, match=r"does not list 'adapt\.onnx'"):
        load_controller(bundle, "panda")

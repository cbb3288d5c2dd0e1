"""The meta-learned residual torque model of adaptive computed torque, as pure functions.

The arm's nominal rigid-body model does most of the work (``metarl_runtime.residual_torque``);
the MLP ``r_θ(sin q, cos q, q̇, q̈)`` learns what it misses, and is adapted on the robot's last M
transitions by the same rules as the dynamics model (``Adaptation.adapt_regression``: the
closed-form output layer, or n SGD steps). Meta-training is GrBAL's objective on regression
windows: adapt on the M past (input, target) pairs, score on the K future ones.

Why a residual and not the whole arm: the learned dynamics model of the whole arm is far less
exact than the rigid-body model (its error before a payload switch was 7× the nominal
computed-torque controller's), and a payload's effect on the joint torques is smooth and
low-dimensional (linear in the payload's ten inertial parameters), so a small feature map with
an adapted output layer can carry it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from metarl_core.model_based.adaptation import Adaptation
from metarl_core.model_based.dynamics_model import Params, StepSizes, mlp_forward
from metarl_core.run.checkpoint_io import CheckpointError, atomic_torch_save, read_checkpoint_payload
from metarl_runtime.residual_torque import NominalArm
from metarl_runtime.rigid_body import RigidBodyModel
from sim.robot_description import RobotDescription

RESIDUAL_STAT_NAMES = ("input_mean", "input_std", "target_mean", "target_std")


RESIDUAL_RULES = ("physical", "rls", "gradient")
"""How the robot adapts the residual: "physical" (a window's ridge least squares over the
parameters that enter the torques linearly: a payload's ten inertial parameters, each joint's
damping, friction and bias; ``NominalArm.adaptation_design``), or the MLP's own rules of
``Adaptation`` ("rls": closed-form output layer, "gradient": n SGD steps)."""


class RegressionWindow(NamedTuple):
    """Consecutive residual pairs: inputs ``(M, in)``, targets ``(M, out)``, adaptation design
    ``(M, out, P)`` for one window, ``(B, M, ·)`` for a batch (a pytree, so ``vmap`` maps over a
    batch)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    design: torch.Tensor


class RegressionWindows(NamedTuple):
    """The M pairs adapted on, then the K that follow, judged on."""

    past: RegressionWindow
    future: RegressionWindow


@dataclass(frozen=True)
class ResidualStats:
    """Per-dimension statistics of the residual's raw inputs and targets (float32 numpy arrays),
    shipped in the checkpoint and ``bundle.json``: the robot normalises exactly as training did."""

    input_mean: np.ndarray
    input_std: np.ndarray
    target_mean: np.ndarray
    target_std: np.ndarray

    MIN_STD = 1e-6

    @classmethod
    def fit(cls, inputs: np.ndarray, targets: np.ndarray) -> ResidualStats:
        """Statistics of a data set; stds are floored so constant dimensions stay finite."""

        def stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return x.mean(axis=0).astype(np.float32), np.maximum(x.std(axis=0), cls.MIN_STD).astype(np.float32)

        return cls(*stats(inputs), *stats(targets))

    def to_dict(self) -> dict[str, list[float]]:
        return {name: getattr(self, name).tolist() for name in RESIDUAL_STAT_NAMES}

    @classmethod
    def from_dict(cls, data: Mapping[str, list[float]]) -> ResidualStats:
        return cls(**{name: np.asarray(data[name], dtype=np.float32) for name in RESIDUAL_STAT_NAMES})

    def torch(self, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(v, device=device) for k, v in self.to_dict().items()}


def normalized_pairs(
    inputs: torch.Tensor, targets: torch.Tensor, stats: Mapping[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw inputs and targets standardised with the training statistics."""
    return (inputs - stats["input_mean"]) / stats["input_std"], (targets - stats["target_mean"]) / stats["target_std"]


def residual_loss(
    params: Params, inputs: torch.Tensor, targets: torch.Tensor, stats: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """Mean squared error of the normalised residual over raw pairs (the robot's window loss)."""
    x, y = normalized_pairs(inputs, targets, stats)
    return ((mlp_forward(params, x) - y) ** 2).mean()


def predict_residual(params: Params, inputs: torch.Tensor, stats: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Residual torques (N·m) ``(B, out)`` for raw inputs ``(B, in)``."""
    x = (inputs - stats["input_mean"]) / stats["input_std"]
    return mlp_forward(params, x) * stats["target_std"] + stats["target_mean"]


def adapt_residual(
    params: Params,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    stats: Mapping[str, torch.Tensor],
    adaptation: Adaptation,
    step_sizes: StepSizes,
    create_graph: bool = False,
) -> Params:
    """``params`` adapted on a window of raw pairs by ``adaptation``'s rule."""
    x, y = normalized_pairs(inputs, targets, stats)
    return adaptation.adapt_regression(params, x, y, step_sizes, create_graph)


def physical_parameters(
    params: Params, prior: Mapping[str, torch.Tensor], window: RegressionWindow, stats: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """θ ``(P,)``: the ridge least squares, on a window, of what the MLP leaves unexplained over
    the adaptation design, pulled toward the meta-learned ``prior["mean"]`` with the
    meta-learned precisions ``exp(prior["log_precision"])`` (normalised target units):

        θ = (DᵀD + diag p)⁻¹ (Dᵀ(y − r_θ(x)) + p ⊙ θ₀).

    One ``P × P`` solve (P = 31 on the Panda) from a handful of transitions, differentiable, so
    the MLP and the prior are meta-trained through it; ``metarl_runtime.residual_runtime`` solves
    the same in numpy on the robot."""
    x, y = normalized_pairs(window.inputs, window.targets, stats)
    design = window.design / stats["target_std"][:, None]
    unexplained = (y - mlp_forward(params, x)).reshape(-1)
    flat = design.reshape(-1, design.shape[-1])
    precision = torch.exp(prior["log_precision"])
    gram = flat.T @ flat + torch.diag(precision)
    return torch.linalg.solve(gram, flat.T @ unexplained + precision * prior["mean"])


def physical_loss(
    params: Params, theta: torch.Tensor, window: RegressionWindow, stats: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """Normalised MSE of the MLP plus the design at ``θ`` over a window."""
    x, y = normalized_pairs(window.inputs, window.targets, stats)
    design = window.design / stats["target_std"][:, None]
    return ((mlp_forward(params, x) + design @ theta - y) ** 2).mean()


def residual_meta_loss(
    params: Params,
    step_sizes: StepSizes,
    prior: Mapping[str, torch.Tensor],
    windows: RegressionWindows,
    stats: Mapping[str, torch.Tensor],
    rule: str,
    adaptation: Adaptation,
    first_order: bool,
) -> torch.Tensor:
    """Mean future loss after adapting on the past by ``rule``, over a batch of windows."""

    def one(window: RegressionWindows) -> torch.Tensor:
        if rule == "physical":
            theta = physical_parameters(params, prior, window.past, stats)
            return physical_loss(params, theta, window.future, stats)
        past = window.past
        adapted = adapt_residual(
            params, past.inputs, past.targets, stats, adaptation, step_sizes, create_graph=not first_order
        )
        return residual_loss(adapted, window.future.inputs, window.future.targets, stats)

    return torch.func.vmap(one)(windows).mean()


@dataclass(frozen=True)
class NominalDescription:
    """The nominal arm as data: its URDF text and the numbers :class:`NominalArm` is built from."""

    urdf: str
    held_positions: dict[str, float]
    damping_nms: tuple[float, ...]
    friction_nm: tuple[float, ...]
    friction_smoothing_rad_s: float
    kp_per_s2: float
    kd_per_s: float

    def arm(self, joint_names: tuple[str, ...], period_s: float) -> NominalArm:
        return NominalArm(
            model=RigidBodyModel.from_urdf(self.urdf, joint_names, self.held_positions),
            damping_nms=np.asarray(self.damping_nms),
            friction_nm=np.asarray(self.friction_nm),
            friction_smoothing_rad_s=self.friction_smoothing_rad_s,
            kp_per_s2=self.kp_per_s2,
            kd_per_s=self.kd_per_s,
            period_s=period_s,
        )


@dataclass
class TrainedResidual:
    """Everything needed to adapt and run the residual computed-torque controller."""

    robot: RobotDescription
    hidden_sizes: tuple[int, ...]
    params: Params
    stats: ResidualStats
    window_size: int
    """M: transitions the robot adapts on."""
    rule: str
    """One of ``RESIDUAL_RULES``."""
    adaptation: Adaptation | None
    """The MLP's rule and settings as the robot runs them ("rls", "gradient"; None for "physical");
    the trainer meta-trains with its config's ``inner_adaptation()``."""
    step_sizes: float | Params
    physical_prior: dict[str, torch.Tensor]
    """The physical rule's meta-learned prior: ``mean`` and ``log_precision``, ``(P,)`` each."""
    nominal: NominalDescription
    warm_start: float = 0.0
    """The gradient rule's warm start on the robot (``ResidualConfig.deployed_warm_start``)."""
    config: dict[str, Any] = field(default_factory=dict)

    def parameter_names(self) -> list[str]:
        return [f"layers.{i}.{kind}" for i in range(len(self.params) // 2) for kind in ("weight", "bias")]

    def nominal_arm(self) -> NominalArm:
        return self.nominal.arm(self.robot.joint_names, 1.0 / self.robot.control_rate_hz)


def save_residual_checkpoint(path: Path, model: TrainedResidual, training_state: dict[str, Any]) -> None:
    """Write ``model`` (tensors and plain containers only) atomically."""
    payload = {
        "kind": "residual",
        "robot": asdict(model.robot),
        "hidden_sizes": list(model.hidden_sizes),
        "params": {k: v.detach().cpu() for k, v in model.params.items()},
        "stats": model.stats.to_dict(),
        "window_size": model.window_size,
        "rule": model.rule,
        "physical_prior": {k: v.detach().cpu() for k, v in model.physical_prior.items()},
        "mode": None if model.adaptation is None else model.adaptation.rule,
        "inner_steps": 1 if model.adaptation is None else model.adaptation.inner_steps,
        "rls_prior_precision": 1.0 if model.adaptation is None else model.adaptation.rls_prior_precision,
        "rls_forgetting": 1.0 if model.adaptation is None else model.adaptation.rls_forgetting,
        "step_sizes": (
            model.step_sizes
            if isinstance(model.step_sizes, float)
            else {k: v.detach().cpu() for k, v in model.step_sizes.items()}
        ),
        "nominal": asdict(model.nominal),
        "warm_start": model.warm_start,
        "config": model.config,
        "training_state": training_state,
    }
    atomic_torch_save(payload, path)


def load_residual_checkpoint(path: Path, map_location: str = "cpu") -> tuple[TrainedResidual, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_residual_checkpoint` (file or run directory)."""
    path, payload = read_checkpoint_payload(path, map_location)
    try:
        if payload.get("kind") != "residual":
            raise KeyError("kind")
        robot = payload["robot"]
        nominal = dict(payload["nominal"])
        model = TrainedResidual(
            robot=RobotDescription(**{k: tuple(v) if isinstance(v, list) else v for k, v in robot.items()}),
            hidden_sizes=tuple(payload["hidden_sizes"]),
            params=payload["params"],
            stats=ResidualStats.from_dict(payload["stats"]),
            window_size=payload["window_size"],
            rule=payload["rule"],
            physical_prior=dict(payload["physical_prior"]),
            adaptation=(
                None
                if payload["mode"] is None
                else Adaptation(
                    payload["mode"],
                    payload["inner_steps"],
                    payload["rls_prior_precision"],
                    payload.get("rls_forgetting", 1.0),  # checkpoints from before the field: all alike
                )
            ),
            step_sizes=payload["step_sizes"],
            nominal=NominalDescription(**{k: tuple(v) if isinstance(v, list) else v for k, v in nominal.items()}),
            warm_start=payload.get("warm_start", 0.0),  # checkpoints from before the field: from θ*
            config=payload["config"],
        )
        return model, dict(payload["training_state"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: not a residual-torque checkpoint of this layout ({error!r})") from None

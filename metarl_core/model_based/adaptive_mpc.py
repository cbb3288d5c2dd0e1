"""The run-time protocol at training and evaluation time, over torch.

Every control step: start from the meta-learned parameters, adapt on the last M transitions,
plan with MPPI through the adapted model. The planner is the robot's own numpy MPPI
(``metarl_runtime.mppi``); here it calls a torch-backed ``predict``, on the robot an ONNX one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from metarl_core.model_based.checkpoint import TrainedDynamics
from metarl_core.model_based.dynamics_model import Params, predict_next_state, window_loss
from metarl_core.model_based.replay_buffer import Transitions
from metarl_runtime.adaptation_guard import adaptation_refusal
from metarl_runtime.mppi import MPPIPlanner, build_tracking_planner


def make_planner(model: TrainedDynamics, seed: int = 0) -> MPPIPlanner:
    """The bundle's planner, built from the same field names and settings the robot will use."""
    robot = model.robot
    return build_tracking_planner(
        {**model.planner, "seed": seed},
        robot.joint_names,
        robot.state_fields,
        robot.reference_fields,
        robot.action_low,
        robot.action_high,
        robot.control_period_s,
    )


class AdaptiveMPCController:
    """obs -> action: adapt on the recent window (optionally), then plan with MPPI."""

    def __init__(
        self,
        model: TrainedDynamics,
        params: Params | None = None,
        adapt: bool = True,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.params = {k: v.detach() for k, v in (params or model.params).items()}
        self.names = model.shape.parameter_names()
        self.step_sizes = model.step_sizes
        self.stats = model.normalizer.torch()
        self.adapt_enabled = adapt
        self.planner = make_planner(model, seed)
        self.state_dim = model.robot.state_dim
        self.reset()

    def reset(self) -> None:
        self.planner.reset()
        self.history: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque(maxlen=self.model.window_size)
        self.previous: tuple[np.ndarray, np.ndarray] | None = None

    def _predict(self, params: Sequence[torch.Tensor], states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        named = dict(zip(self.names, params, strict=True))
        with torch.no_grad():
            out = predict_next_state(named, torch.from_numpy(states), torch.from_numpy(actions), self.stats)
        return out.numpy()

    def current_params(self) -> Mapping[str, torch.Tensor]:
        if not self.adapt_enabled or len(self.history) < 2:
            return self.params
        window = Transitions(*(torch.from_numpy(np.stack(x)) for x in zip(*self.history, strict=True)))
        before = window_loss(self.params, *window, self.stats)
        adapted = self.model.adaptation.adapt(self.params, window, self.stats, self.step_sizes)
        adapted = {k: v.detach() for k, v in adapted.items()}
        after = window_loss(adapted, *window, self.stats)
        # The robot's guard: keep the meta-parameters unless the adaptation is finite and helped.
        if adaptation_refusal((v.numpy() for v in adapted.values()), float(before), float(after)) is not None:
            return self.params
        return adapted

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        state = np.asarray(obs[: self.state_dim], dtype=np.float32)
        reference = np.asarray(obs[self.state_dim :], dtype=np.float64)
        if self.previous is not None:
            self.history.append((self.previous[0], self.previous[1], state))
        params = self.current_params()
        action = self.planner.plan(self._predict, [params[k] for k in self.names], state, reference)
        self.previous = (state, action.astype(np.float32))
        return action.astype(np.float32)

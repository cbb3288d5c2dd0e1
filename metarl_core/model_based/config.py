"""GrBAL training configuration: one documented dataclass, read from YAML.

Read strictly by ``metarl_core.run.config_loading`` as every algorithm's config is: an unknown
key or a value of the wrong type is an error naming the field and the file. The planner's
settings are the typed, strict ``metarl_runtime.mppi.MPPIConfig`` (``planner.sampels`` is an
unknown field, ``planner.samples: 0`` out of range).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from metarl_core.model_based.adaptation import ADAPTATION_RULES, Adaptation
from metarl_core.run.config_loading import (
    RunConfig,
    config_from_dict,
    require_at_least,
    require_fraction,
    require_own_algo,
    require_positive,
)
from metarl_runtime.mppi import MPPIConfig


@dataclass(frozen=True)
class GrBALConfig(RunConfig):
    """Meta-training of an adaptive dynamics model (Nagabandi et al., ICLR 2019), and its planner."""

    algo: str = "grbal"
    """Which trainer reads this file (grbal here)."""
    name: str = "panda"
    """Run name: the default run directory is runs/<name>."""
    env_id: str = "metarl/PandaPayload-v0"
    """Registered task-suite environment to meta-train on."""
    seed: int = 0
    """Seeds tasks, data collection, initialisation and batches."""
    episode_duration_s: float = 4.0
    """Length of each collected episode (s)."""
    train_tasks: int = 16
    """Training tasks drawn from the train split; one replay buffer each."""
    exploration_episodes_per_task: int = 2
    """Episodes per task of the exploration controller before any meta-training."""
    exploration_noise_fraction: float = 0.15
    """Gaussian action noise of exploration, as a fraction of each action's half range."""
    iterations: int = 4
    """Outer iterations: meta-train, then (all but the last) collect with the adaptive planner."""
    planner_episodes_per_iteration: int = 0
    """Episodes per iteration collected by the adapted MPPI controller on random train tasks
    (GrBAL's on-policy data: the states the planner itself visits)."""
    backend: str = "local"
    """Where episodes are collected: "local" (this process) or "ray" (Ray actors, one env each).
    Both give the same episodes; ``metarl train --backend`` overrides it."""
    collection_workers: int = 2
    """Ray actors (one CPU and one environment each) collecting in parallel (backend "ray")."""
    ray_address: str = ""
    """Ray cluster to join ("auto", "HOST:PORT"); empty starts a local Ray instance."""
    gradient_steps_per_iteration: int = 300
    """Adam steps on the meta-objective per iteration."""
    task_batch_size: int = 8
    """Tasks per meta-batch (vmapped)."""
    windows_per_task: int = 4
    """Windows per task in each meta-batch."""
    past_window: int = 16
    """M: transitions the model adapts on (the robot's window)."""
    future_window: int = 16
    """K: transitions the adapted model is judged on."""
    adaptation: str = "gradient"
    """How the robot adapts: "gradient" (n inner SGD steps) or "rls" (closed-form last layer)."""
    rls_prior_precision: float = 1.0
    """Ridge precision pulling the RLS output layer toward the meta-learned one."""
    rls_forgetting: float = 1.0
    """λ in (0, 1] of the RLS solve: a transition a steps older than the window's newest weighs λᵃ
    (``Adaptation.rls_forgetting``), in meta-training and on the robot alike."""
    inner_steps: int = 1
    """n: SGD steps of the adaptation."""
    inner_lr: float = 0.01
    """Initial inner step size."""
    learn_step_sizes: bool = True
    """Meta-SGD: learn one step size per parameter entry."""
    first_order: bool = False
    """Ignore second derivatives in the meta-gradient (cheaper, less exact)."""
    outer_lr: float = 1e-3
    """Adam learning rate of the meta-parameters."""
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layers of the dynamics MLP."""
    planner: MPPIConfig = field(default_factory=MPPIConfig)
    """MPPI settings shipped in the bundle (samples, horizon, noise_fraction, feedback gains...),
    read strictly: an unknown or out-of-range ``planner.*`` key is an error naming it."""

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> GrBALConfig:
        config = config_from_dict(cls, data, source)
        require_at_least(
            config,
            source,
            1,
            "train_tasks",
            "iterations",
            "gradient_steps_per_iteration",
            "task_batch_size",
            "past_window",
            "future_window",
            "inner_steps",
            "windows_per_task",
            "exploration_episodes_per_task",
        )
        require_at_least(config, source, 0, "planner_episodes_per_iteration", "exploration_noise_fraction", "seed")
        require_positive(config, source, "inner_lr", "outer_lr", "episode_duration_s")
        if not config.hidden_sizes or any(size < 1 for size in config.hidden_sizes):
            raise ValueError(f"{source}: field 'hidden_sizes'={config.hidden_sizes} must list at least one size >= 1")
        if config.adaptation not in ADAPTATION_RULES:
            raise ValueError(f"{source}: field 'adaptation'={config.adaptation!r} must be 'gradient' or 'rls'")
        if config.backend not in ("local", "ray"):
            raise ValueError(f"{source}: field 'backend'={config.backend!r} must be 'local' or 'ray'")
        require_at_least(config, source, 1, "collection_workers")
        if config.rls_prior_precision <= 0:
            raise ValueError(f"{source}: field 'rls_prior_precision'={config.rls_prior_precision} must be > 0")
        require_fraction(config, source, "rls_forgetting")
        require_own_algo(config, source, "grbal")
        return config

    def inner_adaptation(self) -> Adaptation:
        """The adaptation these fields describe: the one value training, evaluation, export and
        the robot read the rule from."""
        return Adaptation(self.adaptation, self.inner_steps, self.rls_prior_precision, self.rls_forgetting)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML values: what ``config.yaml`` and a checkpoint's provenance hold."""
        return {**dataclasses.asdict(self), "planner": self.planner.to_dict()}

"""GrBAL training configuration: one documented dataclass, read from YAML.

An unknown key or a value of the wrong type is an error naming the field and the file, so a
typo never silently falls back to a default. The planner's settings are the typed, strict
``metarl_runtime.mppi.MPPIConfig`` (``planner.sampels`` is an unknown field, ``planner.samples: 0`` out
of range); an empty, malformed or binary file is a one-line error naming it.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from metarl_core.model_based.adaptation import ADAPTATION_RULES, Adaptation
from metarl_runtime.mppi import MPPIConfig, PlannerConfigError


@dataclass(frozen=True)
class GrBALConfig:
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
    def from_yaml(cls, path: Path) -> GrBALConfig:
        return config_from_yaml(cls, path)

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
        if config.algo != "grbal":
            raise ValueError(f"{source}: field 'algo'={config.algo!r} must be 'grbal' for this trainer")
        return config

    def inner_adaptation(self) -> Adaptation:
        """The adaptation these fields describe: the one value training, evaluation, export and
        the robot read the rule from."""
        return Adaptation(self.adaptation, self.inner_steps, self.rls_prior_precision)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML values: what ``config.yaml`` and a checkpoint's provenance hold."""
        return {**dataclasses.asdict(self), "planner": self.planner.to_dict()}


ConfigT = TypeVar("ConfigT")


def read_config_mapping(path: Path) -> dict[str, Any]:
    """The YAML mapping in config file ``path``. A missing, unreadable, binary, malformed or
    empty file, or one holding anything but a mapping, is a one-line ``ValueError`` naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"config file not found: {path}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (not UTF-8); expected a YAML mapping") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror or error})") from None
    if "\0" in text:
        raise ValueError(f"{path}: not a text file (holds NUL bytes); expected a YAML mapping")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"{path}: malformed YAML{where}: {problem}") from None
    if data is None:
        raise ValueError(
            f"{path}: is empty; expected a mapping with the run's fields (algo, name, env_id, ...; see configs/)"
        )
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must hold a YAML mapping, got {type(data).__name__}")
    return data


def config_from_yaml(cls: type[ConfigT], path: Path) -> ConfigT:
    """Read ``cls`` (a config dataclass with ``from_dict``) from a YAML mapping in ``path``."""
    return cls.from_dict(read_config_mapping(path), source=str(path))  # type: ignore[attr-defined]


def config_from_dict(cls: type[ConfigT], data: dict[str, Any], source: str, prefix: str = "") -> ConfigT:
    """Build the dataclass ``cls`` from ``data``, refusing unknown keys and wrong types by name.

    A field whose type is itself a dataclass (e.g. ``ppo: PPOConfig``) is read from a nested
    mapping, and its errors name the dotted path (``field 'ppo.clip_coef'``).
    """
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"{source}: unknown field '{prefix}{key}'; valid fields are {sorted(known)}")
        hint = hints[key]
        if hint is MPPIConfig:
            try:
                value = MPPIConfig.from_dict(value, prefix=f"{prefix}{key}.")
            except PlannerConfigError as error:
                raise ValueError(f"{source}: {error}") from None
        elif dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ValueError(f"{source}: field '{prefix}{key}' must be a mapping of {hint.__name__} fields")
            value = config_from_dict(hint, value, source, prefix=f"{prefix}{key}.")
        elif not _matches(value, hint):
            raise ValueError(f"{source}: field '{prefix}{key}'={value!r} must be {hint}")
        elif hint is float and not math.isfinite(value):
            raise ValueError(f"{source}: field '{prefix}{key}'={value!r} must be a finite number")
        values[key] = value
    return cls(**values)


RESUMABLE_FIELDS = ("iterations", "backend", "collection_workers", "ray_address")
"""The only config fields a resumed run may change: it can be extended, not re-specified (where
its episodes are collected changes none of them)."""


def require_resumable(saved: dict[str, Any], config: Any, run_dir: Path) -> None:
    """Refuse to resume the run in ``run_dir``, trained with config dict ``saved``, under a
    ``config`` that differs in anything but ``RESUMABLE_FIELDS``: the checkpoint's parameters,
    data and RNG streams belong to the settings they were made with.

    ``saved`` is read through the current config class first, so a field added since (with a
    default that keeps the old behaviour) is no difference.
    """
    try:
        saved = type(config).from_dict(saved, source=f"{run_dir}/checkpoint").to_dict()
    except ValueError as error:
        raise ValueError(f"{run_dir}: its checkpoint's config no longer loads ({error}); start a new run") from None
    current = config.to_dict()
    changed = sorted(k for k in current if k not in RESUMABLE_FIELDS and saved.get(k) != current[k])
    if changed:
        raise ValueError(
            f"{run_dir}: cannot resume under another config: fields {changed} differ from the run's "
            f"(only {list(RESUMABLE_FIELDS)} may change); start a new run with another --run-dir"
        )


def require_at_least(config: Any, source: str, minimum: float, *names: str) -> None:
    """Raise ``ValueError`` naming the first of ``names`` (dotted paths allowed) below ``minimum``."""
    for name in names:
        value = config
        for part in name.split("."):
            value = getattr(value, part)
        if value < minimum:
            raise ValueError(f"{source}: field '{name}'={value} must be >= {minimum}")


def require_positive(config: Any, source: str, *names: str) -> None:
    """Raise ``ValueError`` naming the first of ``names`` that is not > 0 (a rate, a duration)."""
    for name in names:
        value = getattr(config, name)
        if not value > 0:
            raise ValueError(f"{source}: field '{name}'={value} must be > 0")


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)

"""Task distributions: what is unknown to the controller (payload, friction, terrain, motors).

A task is a small frozen dataclass that serialises to JSON, validates its own ranges, and is
sampled per split. Splits are disjoint by construction: the interpolation split owns an
interval carved out of the training range, the extrapolation split lies beyond it (and, for
the Husky, on a terrain type never seen in training).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np

Split = Literal["train", "interp", "extrap"]
SPLITS: tuple[Split, ...] = ("train", "interp", "extrap")
TaskT = TypeVar("TaskT", bound="Task")


@dataclass(frozen=True)
class Task:
    """Base of the task dataclasses: JSON round trip and range validation."""

    FIELD_RANGES: ClassVar[dict[str, tuple[float, float]]] = {}
    """Valid closed range of every numeric field (SI units)."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that is malformed or out of range."""
        for name, (low, high) in self.FIELD_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{type(self).__name__}.{name}={value!r} must be a number in [{low}, {high}]")
            if not math.isfinite(value) or not low <= value <= high:
                raise ValueError(f"{type(self).__name__}.{name}={value!r} outside [{low}, {high}]")

    def to_json(self) -> str:
        return json.dumps({"type": type(self).__name__, **dataclasses.asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls: type[TaskT], text: str) -> TaskT:
        """Parse and validate; unknown or missing fields raise ``ValueError`` naming them."""
        try:
            data: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{cls.__name__}: not valid JSON ({error})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}: JSON must be an object, got {type(data).__name__}")
        kind = data.pop("type", cls.__name__)
        if kind != cls.__name__:
            raise ValueError(f"{cls.__name__}: JSON describes a {kind}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}; valid fields are {sorted(names)}")
        missing = sorted(n for n in names - set(data) if _has_no_default(cls, n))
        if missing:
            raise ValueError(f"{cls.__name__}: missing field(s) {missing}")
        task = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        task.validate()
        return task


def _has_no_default(cls: type, name: str) -> bool:
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def uniform_excluding(rng: np.random.Generator, low: float, high: float, hole: tuple[float, float]) -> float:
    """Uniform on ``[low, high]`` minus the open interval ``hole`` (the interpolation split's)."""
    width_below, width_above = hole[0] - low, high - hole[1]
    u = rng.uniform(0.0, width_below + width_above)
    return low + u if u < width_below else hole[1] + (u - width_below)


@dataclass(frozen=True)
class PandaTask(Task):
    """A payload rigidly held by the Panda's hand, and joint damping/friction off nominal."""

    payload_mass_kg: float = 0.0
    payload_com_offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Payload centre of mass in the hand frame, relative to the grasp point."""
    joint_damping_scale: float = 1.0
    joint_friction_scale: float = 1.0

    FIELD_RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "payload_mass_kg": (0.0, 5.0),
        "joint_damping_scale": (0.25, 4.0),
        "joint_friction_scale": (0.25, 4.0),
    }
    COM_OFFSET_LIMIT_M: ClassVar[float] = 0.15
    # Payload intervals per split, kg: interp is carved out of the training range.
    PAYLOAD_TRAIN_KG: ClassVar[tuple[float, float]] = (0.0, 3.0)
    PAYLOAD_INTERP_KG: ClassVar[tuple[float, float]] = (1.25, 1.75)
    PAYLOAD_EXTRAP_KG: ClassVar[tuple[float, float]] = (3.0, 5.0)
    # Damping and friction scales per split, likewise.
    SCALE_TRAIN: ClassVar[tuple[float, float]] = (0.5, 2.0)
    SCALE_INTERP: ClassVar[tuple[float, float]] = (0.9, 1.1)
    SCALE_EXTRAP: ClassVar[tuple[float, float]] = (2.0, 4.0)

    def validate(self) -> None:
        super().validate()
        offset = self.payload_com_offset_m
        limit = self.COM_OFFSET_LIMIT_M
        if not isinstance(offset, tuple) or len(offset) != 3:
            raise ValueError(f"PandaTask.payload_com_offset_m={offset!r} must be 3 numbers in [-{limit}, {limit}]")
        for axis, value in zip("xyz", offset, strict=True):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"PandaTask.payload_com_offset_m[{axis}]={value!r} must be a finite number")
            if abs(value) > limit:
                raise ValueError(f"PandaTask.payload_com_offset_m[{axis}]={value!r} outside [-{limit}, {limit}]")

    def summary(self) -> str:
        """The task in one table cell: what a reader needs to tell the tasks of a split apart."""
        return (
            f"{self.payload_mass_kg:.2f} kg, damping ×{self.joint_damping_scale:.2f}, "
            f"friction ×{self.joint_friction_scale:.2f}"
        )

    @classmethod
    def sample(cls, rng: np.random.Generator, split: Split) -> PandaTask:
        """One task of ``split``; train and interp never overlap, extrap lies beyond train."""
        if split == "train":
            mass = uniform_excluding(rng, *cls.PAYLOAD_TRAIN_KG, cls.PAYLOAD_INTERP_KG)
            damping, friction = (uniform_excluding(rng, *cls.SCALE_TRAIN, cls.SCALE_INTERP) for _ in range(2))
        elif split == "interp":
            mass = rng.uniform(*cls.PAYLOAD_INTERP_KG)
            damping, friction = rng.uniform(*cls.SCALE_INTERP, size=2)
        elif split == "extrap":
            # Strictly above the training ranges: never 3.0 kg or a 2.0 scale itself.
            mass = float(np.nextafter(cls.PAYLOAD_EXTRAP_KG[0], np.inf)) + rng.uniform(0.0, 2.0 - 1e-9)
            damping, friction = np.nextafter(cls.SCALE_EXTRAP[0], np.inf) + rng.uniform(0.0, 2.0 - 1e-9, size=2)
        else:
            raise ValueError(f"split={split!r} is not one of {SPLITS}")
        offset = rng.uniform(-0.05, 0.05, size=3)
        return cls(
            payload_mass_kg=float(mass),
            payload_com_offset_m=(float(offset[0]), float(offset[1]), float(offset[2])),
            joint_damping_scale=float(damping),
            joint_friction_scale=float(friction),
        )


TerrainType = Literal["flat", "rough", "bumps"]
TERRAIN_TYPES: tuple[TerrainType, ...] = ("flat", "rough", "bumps")


@dataclass(frozen=True)
class HuskyTask(Task):
    """Ground, slope, terrain, payload on the deck and motor strength of the Husky."""

    ground_friction: float = 1.0
    """Lateral (Coulomb) friction coefficient of the ground."""
    slope_rad: float = 0.0
    """Incline along the robot's initial heading; positive is uphill."""
    terrain_type: TerrainType = "flat"
    terrain_roughness_m: float = 0.0
    """Height amplitude of the terrain's relief (0 on flat ground)."""
    payload_mass_kg: float = 0.0
    motor_strength_scale: float = 1.0
    """Scale on the wheel motors' torque limit (worn motors, low battery)."""

    FIELD_RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "ground_friction": (0.05, 2.0),
        "slope_rad": (-0.35, 0.35),
        "terrain_roughness_m": (0.0, 0.08),
        "payload_mass_kg": (0.0, 80.0),
        "motor_strength_scale": (0.1, 2.0),
    }
    TRAIN_TERRAINS: ClassVar[tuple[TerrainType, ...]] = ("flat", "rough")
    HELD_OUT_TERRAINS: ClassVar[tuple[TerrainType, ...]] = ("bumps",)

    def validate(self) -> None:
        if self.terrain_type not in TERRAIN_TYPES:
            raise ValueError(f"HuskyTask.terrain_type={self.terrain_type!r} is not one of {TERRAIN_TYPES}")
        super().validate()

    def summary(self) -> str:
        """The task in one table cell: what a reader needs to tell the tasks of a split apart."""
        return (
            f"{self.terrain_type}, slope {self.slope_rad:+.2f} rad, friction {self.ground_friction:.2f}, "
            f"{self.payload_mass_kg:.0f} kg, motors {self.motor_strength_scale:.2f}"
        )

    @classmethod
    def sample(cls, rng: np.random.Generator, split: Split) -> HuskyTask:
        """One task of ``split``: interp owns a payload interval, extrap a terrain and harsher ground."""
        if split in ("train", "interp"):
            terrain: TerrainType = cls.TRAIN_TERRAINS[int(rng.integers(len(cls.TRAIN_TERRAINS)))]
            payload = uniform_excluding(rng, 0.0, 40.0, (15.0, 25.0)) if split == "train" else rng.uniform(15.0, 25.0)
            friction = rng.uniform(0.5, 1.2)
            slope = rng.uniform(-0.1, 0.1)
            strength = rng.uniform(0.6, 1.2)
        elif split == "extrap":
            terrain = cls.HELD_OUT_TERRAINS[int(rng.integers(len(cls.HELD_OUT_TERRAINS)))]
            payload = rng.uniform(40.0, 80.0)
            friction = rng.uniform(0.2, 0.5)
            slope = float(rng.choice([-1.0, 1.0])) * rng.uniform(0.1, 0.25)
            strength = rng.uniform(0.3, 0.6)
        else:
            raise ValueError(f"split={split!r} is not one of {SPLITS}")
        roughness = 0.0 if terrain == "flat" else rng.uniform(0.01, 0.04)
        return cls(
            ground_friction=float(friction),
            slope_rad=float(slope),
            terrain_type=terrain,
            terrain_roughness_m=float(roughness),
            payload_mass_kg=float(payload),
            motor_strength_scale=float(strength),
        )

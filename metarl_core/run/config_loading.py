"""Reading a training config strictly, the same for every algorithm: YAML into a documented
dataclass, where an unknown key or a value of the wrong type is an error naming the dotted
field (``ppo.clip_coef``) and the file, so a typo never silently falls back to a default.

Each algorithm's config (``GrBALConfig``, ``MamlPPOConfig``, ``RL2Config``) is a frozen
dataclass deriving from :class:`RunConfig` whose ``from_dict`` calls :func:`config_from_dict`
and then checks its own ranges with :func:`require_at_least` and friends.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

ConfigT = TypeVar("ConfigT")


class RunConfig:
    """What every algorithm's config dataclass shares: read from a YAML file by its own strict
    ``from_dict(data, source)``, written back (``config.yaml``, a checkpoint's provenance) as
    plain YAML values by :meth:`to_dict`."""

    @classmethod
    def from_yaml(cls: type[ConfigT], path: Path) -> ConfigT:
        """The config in YAML file ``path``; every error names the file."""
        return cls.from_dict(read_config_mapping(path), source=str(path))  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML values: what ``config.yaml`` and a checkpoint's provenance hold."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]


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


def config_from_dict(cls: type[ConfigT], data: dict[str, Any], source: str, prefix: str = "") -> ConfigT:
    """Build the dataclass ``cls`` from ``data``, refusing unknown keys and wrong types by name.

    A field whose type is itself a dataclass (e.g. ``ppo: PPOConfig``) is read from a nested
    mapping, and its errors name the dotted path (``field 'ppo.clip_coef'``). A nested type that
    reads itself strictly, with a ``from_dict(data, prefix=...)`` raising ``ValueError`` that
    names the field (``metarl_runtime.mppi.MPPIConfig``, the planner), is handed its mapping.
    """
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"{source}: unknown field '{prefix}{key}'; valid fields are {sorted(known)}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and hasattr(hint, "from_dict"):
            try:
                value = hint.from_dict(value, prefix=f"{prefix}{key}.")
            except ValueError as error:
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


def require_own_algo(config: Any, source: str, algo: str) -> None:
    """Raise ``ValueError`` when ``config.algo`` is not ``algo``, the trainer reading it."""
    if config.algo != algo:
        raise ValueError(f"{source}: field 'algo'={config.algo!r} must be '{algo}' for this trainer")


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


def require_fraction(config: Any, source: str, *names: str) -> None:
    """Raise ``ValueError`` naming the first of ``names`` not in (0, 1] (a forgetting factor)."""
    for name in names:
        value = getattr(config, name)
        if not 0 < value <= 1:
            raise ValueError(f"{source}: field '{name}'={value} must be in (0, 1]")


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

"""The payload-switch experiment: a 4 kg payload put into the Panda's hand mid-episode.

One function runs any ``(state, reference) -> command`` controller through it and returns the
tracking error per tick; ``summarize`` turns that into the figures the issue asks for: the error
before the switch, in the first second after it, at steady state, and two recovery times: how
long after the switch the error is back within 20 % of its own steady value (the issue's figure),
and within 20 % of its error *before* the switch (which a controller whose error settles at a
higher level never is), each staying there for 1 s.
Evaluation (torch controllers), the in-process demo and the ROS demo all use the same numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

import sim
from sim.tasks import PandaTask

EPISODE_S = 6.0
SWITCH_S = 2.0
PAYLOAD_AFTER_KG = 4.0
STEADY_AFTER_S = 1.5
"""Steady state is taken from this long after the switch to the end of the episode."""
RECOVERY_BAND = 0.2
"""Recovered: the smoothed error is at most this fraction above its steady value."""
SMOOTHING_S = 0.1
RECOVERY_DWELL_S = 1.0
"""Recovered: inside the band for at least this long."""
RECOVERY_FLOOR_RAD = 0.005
"""The band is never narrower than this. A well-adapted controller's error settles at 3–4 mrad,
and along the reference trajectory it varies between 3 and 6 mrad with no switch at all
(measured over the ROS demo run, 3 repeats); 20 % of 3 mrad would time that variation, not the
recovery from the switch."""
GIF_EVERY_N_TICKS = 4

Controller = Callable[[np.ndarray, np.ndarray], np.ndarray]


class ObservationController:
    """Adapts an ``obs -> action`` controller (the task suite's, torch MPC) to ``(state, reference)``."""

    def __init__(self, controller: Callable[[np.ndarray], np.ndarray]) -> None:
        self.controller = controller

    def reset(self) -> None:
        if hasattr(self.controller, "reset"):
            self.controller.reset()

    def __call__(self, state: np.ndarray, reference: np.ndarray) -> np.ndarray:
        return self.controller(np.concatenate([state, reference]))


def run_payload_switch(
    controller: Controller,
    seed: int,
    render: bool = False,
    before: PandaTask | None = None,
    payload_after_kg: float = PAYLOAD_AFTER_KG,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Tracking error per tick (rad, RMS over joints) with the payload switched at ``SWITCH_S``;
    frames every ``GIF_EVERY_N_TICKS`` ticks when ``render``."""
    env = sim.make("metarl/PandaPayload-v0", episode_duration_s=EPISODE_S, render_mode="rgb_array" if render else None)
    env.unwrapped.set_task(before or PandaTask(payload_mass_kg=0.0))
    obs, _ = env.reset(seed=seed)
    if hasattr(controller, "reset"):
        controller.reset()
    state_dim = env.unwrapped.robot.state_dim
    errors, frames = [], []
    switch_tick = round(SWITCH_S * env.unwrapped.robot.control_rate_hz)
    done, tick = False, 0
    while not done:
        if tick == switch_tick:
            env.unwrapped.set_task(dataclasses.replace(env.unwrapped.get_task(), payload_mass_kg=payload_after_kg))
        action = controller(obs[:state_dim], obs[state_dim:])
        obs, _, terminated, truncated, info = env.step(action)
        errors.append(info["tracking_error"])
        if render and tick % GIF_EVERY_N_TICKS == 0:
            frames.append(env.render())
        done, tick = terminated or truncated, tick + 1
    env.close()
    return np.asarray(errors), frames


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


def recovery_time_s(
    errors: np.ndarray, rate_hz: float, switch_s: float = SWITCH_S, level: float | None = None
) -> float:
    """Seconds from the switch until the smoothed error is back at most ``RECOVERY_BAND`` above
    ``level`` (default: its own steady value after the switch) and stays there for
    ``RECOVERY_DWELL_S`` (inf if it never does).

    One-sided: an error below the level is no transient still to recover from. The dwell
    (rather than "for the rest of the run") keeps a later bump of the reference trajectory from
    being counted as slow recovery from the switch. Resolution: the smoothing window.
    """
    switch = round(switch_s * rate_hz)
    steady = _rms(errors[switch + round(STEADY_AFTER_S * rate_hz) :]) if level is None else level
    width = max(1, round(SMOOTHING_S * rate_hz))
    dwell = max(1, round(RECOVERY_DWELL_S * rate_hz))
    smoothed = np.sqrt(np.convolve(np.square(errors[switch:]), np.ones(width) / width, mode="valid"))
    inside = smoothed <= steady + max(RECOVERY_BAND * steady, RECOVERY_FLOOR_RAD)
    # Windows of ``dwell`` smoothed values all inside the band, by a running count of inside ones.
    counts = np.convolve(inside.astype(int), np.ones(dwell, dtype=int), mode="valid")
    settled = np.flatnonzero(counts == dwell)
    if len(settled) == 0:
        return float("inf")
    return (settled[0] + width - 1) / rate_hz  # the trailing window's last tick


def summarize(errors: np.ndarray, rate_hz: float, switch_s: float = SWITCH_S) -> dict[str, float]:
    """RMS error before the switch, in the first second after it, at steady state, and the
    recovery times to the steady and to the pre-switch error."""
    switch = round(switch_s * rate_hz)
    before = _rms(errors[round(0.5 * rate_hz) : switch])
    return {
        "before_switch": before,
        "first_second_after": _rms(errors[switch : switch + round(rate_hz)]),
        "steady_after": _rms(errors[switch + round(STEADY_AFTER_S * rate_hz) :]),
        "recovery_s": recovery_time_s(errors, rate_hz, switch_s),
        "recovery_to_before_s": recovery_time_s(errors, rate_hz, switch_s, level=before),
    }


def plot_switch(runs: dict[str, np.ndarray], rate_hz: float, path: Path, title: str) -> None:
    """Tracking error over time of each run, the switch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4))
    for name, errors in runs.items():
        axis.plot(np.arange(len(errors)) / rate_hz, errors, label=name)
    axis.axvline(SWITCH_S, color="k", linestyle="--", linewidth=1)
    axis.text(SWITCH_S + 0.05, axis.get_ylim()[1] * 0.9, f"payload 0 → {PAYLOAD_AFTER_KG:g} kg")
    axis.set_xlabel("time (s)")
    axis.set_ylabel("RMS joint tracking error (rad)")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)

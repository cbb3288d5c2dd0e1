"""PyBullet's C-level prints (``argv[0]=`` at client creation) stay out of our stdout."""

from __future__ import annotations

import ctypes

import pytest

import sim
from sim.baseline_controllers import PandaPDGravityController
from sim.physics_client import c_stdout_discarded


def c_level_stdout(capfd: pytest.CaptureFixture[str]) -> str:
    """Everything written to fd 1 so far, C stdio buffers included (they are full-buffered here)."""
    ctypes.CDLL(None).fflush(None)
    return capfd.readouterr().out


@pytest.mark.parametrize(
    "env_id", ["metarl/PandaPayload-v0", "metarl/HuskyTerrain-v0", "metarl/HalfCheetahVelocity-v0"]
)
def test_creating_an_env_prints_nothing_to_fd_1(env_id: str, capfd: pytest.CaptureFixture[str]) -> None:
    env = sim.make(env_id)
    env.reset(seed=0)
    env.close()
    assert c_level_stdout(capfd) == ""


def test_the_baseline_controllers_model_client_is_silent_too(capfd: pytest.CaptureFixture[str]) -> None:
    PandaPDGravityController()
    assert c_level_stdout(capfd) == ""


def test_python_output_around_the_silenced_block_still_arrives(capfd: pytest.CaptureFixture[str]) -> None:
    print("before", flush=False)
    with c_stdout_discarded():
        ctypes.CDLL(None).puts(b"from C, discarded")
    print("after")
    assert c_level_stdout(capfd) == "before\nafter\n"

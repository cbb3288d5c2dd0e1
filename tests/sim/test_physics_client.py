"""PyBullet's C-level prints (``argv[0]=`` at client creation, its build time on import) stay out
of our output."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import gymnasium
import pytest

import sim  # noqa: F401  (registers the environment ids)
from sim.baseline_controllers import PandaPDGravityController
from sim.physics_client import c_output_discarded

ROOT = Path(__file__).resolve().parents[2]


def c_level_stdout(capfd: pytest.CaptureFixture[str]) -> str:
    """Everything written to fd 1 so far, C stdio buffers included (they are full-buffered here)."""
    ctypes.CDLL(None).fflush(None)
    return capfd.readouterr().out


@pytest.mark.parametrize(
    "env_id", ["metarl/PandaPayload-v0", "metarl/HuskyTerrain-v0", "metarl/HalfCheetahVelocity-v0"]
)
def test_creating_an_env_prints_nothing_to_fd_1(env_id: str, capfd: pytest.CaptureFixture[str]) -> None:
    env = gymnasium.make(env_id)
    env.reset(seed=0)
    env.close()
    assert c_level_stdout(capfd) == ""


def test_the_baseline_controllers_model_client_is_silent_too(capfd: pytest.CaptureFixture[str]) -> None:
    PandaPDGravityController()
    assert c_level_stdout(capfd) == ""


def test_python_output_around_the_silenced_block_still_arrives(capfd: pytest.CaptureFixture[str]) -> None:
    print("before", flush=False)
    with c_output_discarded():
        ctypes.CDLL(None).puts(b"from C, discarded")
    print("after")
    assert c_level_stdout(capfd) == "before\nafter\n"


def test_importing_sim_prints_nothing_to_stdout_or_stderr() -> None:
    script = "import ctypes, sim; ctypes.CDLL(None).fflush(None)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")

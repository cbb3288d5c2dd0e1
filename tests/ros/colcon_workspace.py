"""The workspace as a robot user builds it: ``colcon build`` run at the repository root.

Build, install and log trees go to a temporary directory, so the checkout stays untouched; the
environment of an installed node is what sourcing the install's ``local_setup.bash`` gives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLCON_TIMEOUT_S = 300


@dataclass(frozen=True)
class ColconInstall:
    """An install tree colcon wrote (``install_base/<package>/...``) and what colcon printed."""

    install_base: Path
    output: str

    def prefix(self, package: str) -> Path:
        """The isolated install prefix of ``package`` (colcon's default layout)."""
        return self.install_base / package

    def environment(self) -> dict[str, str]:
        """``os.environ`` after ``source <install>/local_setup.bash``, as a shell on the robot has it."""
        dump = f'"{sys.executable}" -c "import json, os; print(json.dumps(dict(os.environ)))"'
        script = f'source "{self.install_base / "local_setup.bash"}" && {dump}'
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, timeout=60)
        return json.loads(done.stdout.splitlines()[-1])


def build_from_repository_root(work_dir: Path) -> ColconInstall:
    """``python -m colcon build`` at the repository root (its ``colcon_defaults.yaml`` applies).

    Raises ``RuntimeError`` with colcon's output when the build fails.
    """
    install_base = work_dir / "install"
    command = [
        sys.executable,
        "-m",
        "colcon",
        "--log-base",
        str(work_dir / "log"),
        "build",
        "--build-base",
        str(work_dir / "build"),
        "--install-base",
        str(install_base),
        "--event-handlers",
        "console_direct+",
    ]
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=COLCON_TIMEOUT_S,
        env=dict(os.environ, COLCON_HOME=str(work_dir / "colcon_home")),
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"colcon build at {ROOT} failed ({done.returncode}):\n{output[-4000:]}")
    return ColconInstall(install_base, output)

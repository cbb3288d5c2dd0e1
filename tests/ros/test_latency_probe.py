"""The probe behind ``metarl bench ros`` measures a real node; it is checked for what it reports,
not for how fast the node is (speed lives in BENCHMARKS.md)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.panda_payload import PANDA

from .untrained_bundles import untrained_bundle


@pytest.mark.integration
def test_probe_reports_the_node_it_drove(tmp_path: Path) -> None:
    # A 50 Hz bundle: the node runs a bundle only at its own control rate.
    bundle = untrained_bundle(dataclasses.replace(PANDA, control_rate_hz=50.0), tmp_path / "panda")
    # As `metarl bench ros` runs it: its own process, so its DDS participant leaves with it.
    probe = [sys.executable, "-m", "experiments.latency_probe", "--bundle", str(bundle)]
    done = subprocess.run([*probe, "--rate-hz", "50", "--seconds", "3"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) == {
        "rate_hz",
        "latency_p50_ms",
        "latency_p99_ms",
        "achieved_rate_hz",
        "sensor_rate_hz",
        "tick_p50_ms",
        "tick_p99_ms",
        "overrun_percent",
        "cpu_cores",
        "node_cpus_allowed",
        "floor_p50_ms",
        "floor_p99_ms",
        *(f"stage.{stage}_{q}_ms" for stage in ("sensors", "adapt", "plan", "publish") for q in ("p50", "p99")),
    }
    assert all(math.isfinite(value) for value in result.values()), result
    assert 0.0 < result["latency_p50_ms"] <= result["latency_p99_ms"]
    # One command per state: commands arrive at the rate the states were sent.
    assert result["achieved_rate_hz"] == pytest.approx(result["sensor_rate_hz"], rel=0.2)
    assert result["cpu_cores"] > 0.0 and 0.0 < result["tick_p50_ms"] <= result["tick_p99_ms"]
    # The ping-pong floor came back, and every commanded tick adapted (its window fills at once).
    assert 0.0 < result["floor_p50_ms"] <= result["floor_p99_ms"]
    assert 0.0 < result["stage.adapt_p50_ms"] <= result["stage.adapt_p99_ms"]
    assert 0.0 < result["stage.plan_p50_ms"] <= result["stage.plan_p99_ms"]


@pytest.mark.integration
def test_probe_pins_the_node_to_one_cpu_and_refuses_one_it_cannot_have(tmp_path: Path) -> None:
    bundle = untrained_bundle(dataclasses.replace(PANDA, control_rate_hz=50.0), tmp_path / "panda")
    probe = [sys.executable, "-m", "experiments.latency_probe", "--bundle", str(bundle), "--rate-hz", "50"]
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("pinning the node to one CPU and the probe to the others needs two")
    done = subprocess.run(
        [*probe, "--seconds", "2", "--node-cpu", str(cpus[-1])], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["node_cpus_allowed"] == 1.0
    assert result["achieved_rate_hz"] == pytest.approx(result["sensor_rate_hz"], rel=0.2)
    refused = subprocess.run([*probe, "--node-cpu", "4095"], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "--node-cpu 4095: needs that CPU" in refused.stderr

"""A real run recorded as a bag and scored offline: sim_bridge + adaptive_controller + bag_recorder
as their own processes over ROS 2 (the demo's session), the payload switched mid-run.

The sim-to-log check: the offline score of the bag agrees with the same scorer run in-process on
the transitions the session itself heard over ROS (lock-step: command i answers the state of
stamp i·dt, so that pairing needs no log time). Tolerance: 1e-6 relative. Both sides feed the
same float64 values (CDR carries the messages' doubles unchanged) through the same float32
graphs in the same order, so they agree to rounding unless a best-effort sensor message was lost
on one side, which splits a segment or shifts the pairing and fails the check. The session stops
listening a tick or two before the recorder does, so the ticks both scored are compared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import Reader

from experiments.payload_switch_session import SessionResult, run_session
from metarl_core.log_replay.bag_evaluation import evaluate_bag
from metarl_core.log_replay.log_scoring import ScoredModel, score_log
from metarl_core.log_replay.log_transitions import Segment
from metarl_runtime.model_runtime import AdaptiveRuntime
from sim.panda_payload import PANDA

from .untrained_bundles import untrained_bundle

K = 8
RELATIVE_TOLERANCE = 1e-6


def in_process_segment(result: SessionResult) -> Segment:
    """The session's own view: states and references by stamp, the i-th command for stamp i·dt."""
    stamps = sorted(result.joint_states)
    count = min(len(stamps) - 1, len(result.commands))
    assert np.allclose(np.diff(stamps[: count + 1]), 1.0 / PANDA.control_rate_hz), "the session lost a joint state"
    states = np.stack([result.joint_states[s] for s in stamps[: count + 1]])
    return Segment(
        np.asarray(stamps[:count]),
        states[:-1],
        result.commands[:count],
        states[1:],
        np.stack([result.references[s] for s in stamps[:count]]),
    )


@pytest.mark.integration
def test_a_recorded_run_scores_offline_as_in_process(ros_node, tmp_path: Path) -> None:
    bundle = untrained_bundle(PANDA, tmp_path / "bundle")
    bag = tmp_path / "bag"
    result = run_session(ros_node, bundle, tmp_path / "logs", True, switch_s=1.0, duration_s=2.5, bag_path=bag)

    metadata = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert metadata["storage_identifier"] == "mcap"
    with Reader(bag) as reader:  # a valid rosbag2 directory: metadata.yaml + MCAP, every topic
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts["/joint_states"] >= 250 and counts["/effort_controller/commands"] >= 240, counts
    assert counts["/reference"] >= 250 and counts["/diagnostics"] >= 1, counts

    offline = evaluate_bag(bag, bundle, tmp_path / "score", future_window=K)
    runtime = AdaptiveRuntime.load(bundle)
    models = [ScoredModel("bundle, adapted", runtime, True), ScoredModel("bundle, no adaptation", runtime, False)]
    in_process = score_log(models, [in_process_segment(result)], K)

    assert offline.breaks == [], offline.breaks
    (log_segment,), (session_segment,) = offline.score.segments, in_process.segments
    # The session stops listening a tick or two before the recorder: compare the ticks both scored.
    assert log_segment.start_s == session_segment.start_s
    assert abs(log_segment.transitions - session_segment.transitions) <= 2
    common = np.intersect1d(log_segment.times_s, session_segment.times_s)
    assert len(common) >= len(session_segment.times_s) - 2
    for row in in_process.rows:
        offline_errors = log_segment.errors[row][np.isin(log_segment.times_s, common)]
        session_errors = session_segment.errors[row][np.isin(session_segment.times_s, common)]
        np.testing.assert_allclose(offline_errors, session_errors, rtol=RELATIVE_TOLERANCE, err_msg=row)
    ticks = min(len(log_segment.would_be_commands), len(session_segment.would_be_commands))
    np.testing.assert_allclose(
        log_segment.would_be_commands[:ticks], session_segment.would_be_commands[:ticks], rtol=RELATIVE_TOLERANCE
    )
    worst = max(
        float(
            np.max(
                np.abs(
                    log_segment.errors[r][np.isin(log_segment.times_s, common)]
                    / session_segment.errors[r][np.isin(session_segment.times_s, common)]
                    - 1.0
                )
            )
        )
        for r in in_process.rows
    )
    print(f"sim-to-log: {len(common)} ticks scored on both sides, largest relative difference {worst:.2e}")

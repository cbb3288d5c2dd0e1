"""The ``metarl eval --bag`` options and their dispatch: a log's errors become one line, no traceback.

Nothing is imported at module level beyond the standard library: the parser is built for every
``metarl`` command, and ``rosbags`` is an extra (``metarl[logs]``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

DEFAULT_TOPICS = {
    "joint_states": "/joint_states",
    "reference": "/reference",
    "command": "/effort_controller/commands",
    "imu": "/imu",
    "odom": "/odom",
}
"""The node's topic parameters' defaults (``bag_reading.LogTopics``)."""


def add_bag_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of scoring a recorded bag (cheap to add: nothing heavy is imported)."""
    group = parser.add_argument_group("robot log (metarl eval --bag PATH --bundle DIR)")
    group.add_argument("--bag", type=Path, help="rosbag2 directory (MCAP or sqlite3) or a .mcap file")
    group.add_argument("--bundle", type=Path, help="the bundle to score on the log")
    group.add_argument("--compare-bundle", type=Path, help="a second bundle, scored on the same log")
    group.add_argument("--future-window", type=int, help="K (default: the bundle's training config, else 16)")
    group.add_argument("--adapt-every", type=int, default=1, help="adapt every N ticks, as the node's parameter")
    for name, topic in DEFAULT_TOPICS.items():
        group.add_argument(f"--{name.replace('_', '-')}-topic", default=topic)
    group.add_argument("--out", type=Path, help="where the table and plot go (default: beside the bag)")


def eval_bag(args: argparse.Namespace) -> None:
    """Run :func:`evaluate_bag` from the parsed options; every refusal exits with one line."""
    try:
        from export.mb_bundle import NoMBModelError, export_mb_bundle
        from metarl_core.log_replay.bag_evaluation import evaluate_bag
        from metarl_core.log_replay.bag_reading import LogReplayError, LogTopics
        from metarl_runtime.model_runtime import BundleError
    except ModuleNotFoundError as error:
        raise SystemExit(f"metarl eval --bag needs {error.name}: pip install 'metarl[logs]'") from None

    if args.bag is None or args.bundle is None:
        raise SystemExit("metarl eval: --bag and --bundle go together (a log and the bundle to score on it)")
    topics = LogTopics(
        args.joint_states_topic, args.reference_topic, args.command_topic, args.imu_topic, args.odom_topic
    )
    out = args.out or Path(args.bag).resolve().parent
    try:
        with tempfile.TemporaryDirectory() as tmp:
            mb_bundle = None if args.run is None else export_mb_bundle(args.run, Path(tmp) / "mb")
            result = evaluate_bag(
                args.bag, args.bundle, out, args.compare_bundle, mb_bundle, args.future_window, args.adapt_every, topics
            )
    except (LogReplayError, BundleError, NoMBModelError, FileNotFoundError) as error:
        raise SystemExit(f"metarl eval --bag: {error}") from None
    print(result.table_path.read_text(encoding="utf-8"))
    print(f"wrote {result.table_path} and {result.plot_path}")

"""``metarl eval --bag PATH --bundle DIR``: read, segment, score and report one log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from metarl_core.log_replay.bag_reading import LogTopics, read_log
from metarl_core.log_replay.log_report import markdown_report, plot_score
from metarl_core.log_replay.log_scoring import ADAPTED, UNADAPTED, LogScore, ScoredModel, score_log
from metarl_core.log_replay.log_transitions import LogBreak, build_segments
from metarl_runtime.bundle_manifest import MANIFEST_NAME
from metarl_runtime.model_runtime import AdaptiveRuntime

DEFAULT_FUTURE_WINDOW = 16
"""K when the bundle's provenance does not record its training config's ``future_window``."""


@dataclass(frozen=True)
class BagEvaluation:
    """What one ``metarl eval --bag`` produced."""

    score: LogScore
    breaks: list[LogBreak]
    table_path: Path
    plot_path: Path
    messages: int


def future_window_of(bundle: Path) -> int:
    """K of the bundle's training config (``provenance.config.future_window``), else the default."""
    data = json.loads((Path(bundle) / MANIFEST_NAME).read_text(encoding="utf-8"))
    config = data.get("provenance", {}).get("config", {})
    value = config.get("future_window", DEFAULT_FUTURE_WINDOW) if isinstance(config, dict) else DEFAULT_FUTURE_WINDOW
    return int(value)


def evaluate_bag(
    bag: Path,
    bundle: Path,
    out_dir: Path,
    compare_bundle: Path | None = None,
    mb_bundle: Path | None = None,
    future_window: int | None = None,
    adapt_every_n_ticks: int = 1,
    topics: LogTopics | None = None,
) -> BagEvaluation:
    """Score ``bundle`` on ``bag`` (against a second bundle and/or a run's MB model, exported as a
    bundle by ``export.mb_bundle``) and write ``<out_dir>/<bag name>_score.md`` and ``.png``."""
    runtime = AdaptiveRuntime.load(bundle)
    k = future_window or future_window_of(bundle)
    models = [ScoredModel(f"bundle, {ADAPTED}", runtime, True), ScoredModel(f"bundle, {UNADAPTED}", runtime, False)]
    if compare_bundle is not None:
        models.append(ScoredModel(f"compare bundle, {ADAPTED}", AdaptiveRuntime.load(compare_bundle), True))
    log = read_log(bag, runtime.manifest, topics)
    window = max(m.runtime.manifest.window_size for m in models)
    if mb_bundle is not None:
        models.append(ScoredModel("MB (run)", AdaptiveRuntime.load(mb_bundle), False))
    segments, breaks = build_segments(log, runtime.manifest.control_rate_hz, window + k)
    score = score_log(models, segments, k, adapt_every_n_ticks)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = Path(bag).name.removesuffix(".mcap")
    table_path, plot_path = out_dir / f"{name}_score.md", out_dir / f"{name}_score.png"
    table_path.write_text(markdown_report(Path(bag), score, breaks, runtime.manifest.joint_names, k), encoding="utf-8")
    plot_score(score, breaks, plot_path, f"{name}: K-future prediction error over the log")
    return BagEvaluation(score, breaks, table_path, plot_path, log.messages)

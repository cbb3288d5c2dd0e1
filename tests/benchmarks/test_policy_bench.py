"""The policy benchmark's verdicts: 'outside the seed spread' means the seed intervals do not overlap."""

from __future__ import annotations

import numpy as np

from benchmarks.policy_bench import (
    paired_gain,
    render_maml_nav,
    render_rl2_nav,
    render_robot,
    render_robot_targets,
    separation,
)


def test_separation_says_outside_only_when_the_intervals_do_not_overlap() -> None:
    apart = separation(np.array([-10.0, -11.0, -12.0]), np.array([-20.0, -21.0, -22.0]))
    assert apart.startswith("+10.00") and "(outside the seed spread" in apart
    overlapping = separation(np.array([-10.0, -15.0, -20.0]), np.array([-14.0, -16.0, -18.0]))
    assert "NOT outside the seed spread" in overlapping


def test_maml_table_lists_every_step_for_both_policies() -> None:
    result = {
        "curves": {
            "MAML-PPO": [[-40.0, -12.0, -11.0, -10.0]] * 3,
            "pretrained (same PPO, no meta)": [[-38.0, -20.0, -15.0, -12.0]] * 3,
        },
        "env_steps": {"MAML-PPO": [7e6] * 3, "pretrained (same PPO, no meta)": [7e6] * 3},
        "command": "metarl bench policy --experiment maml-nav --seeds 3",
        "machine": "test",
        "figure": "docs/images/policy_maml_nav.png",
    }
    text = "\n".join(render_maml_nav(result))
    assert "| MAML-PPO | -40.00 ± 0.00 | -12.00 ± 0.00 | -11.00 ± 0.00 | -10.00 ± 0.00 | 7e+06 |" in text
    assert "vs the pretrained policy after its step: +8.00 (outside the seed spread" in text


def test_paired_gain_counts_each_seed_against_itself() -> None:
    first, later = np.array([-6.0, -20.0, -11.0]), np.array([-4.0, -15.0, -8.0])
    assert paired_gain(later, first).startswith("+2.00, +5.00, +3.00 (mean +3.33 ± 1.25: interval above zero; 3 of 3")
    assert "NOT above zero; 1 of 3 seeds rise" in paired_gain(np.array([1.0, -1.0, -2.0]), np.zeros(3))


def test_rl2_table_judges_the_rise_seed_by_seed() -> None:
    """Seeds that trained to different levels overlap across seeds, yet each rises within its trial."""
    result = {
        "curves": {
            "RL² (hidden state carried, as trained)": [[-6.0, -4.0], [-20.0, -15.0], [-11.0, -8.0]],
            "ablation: every episode starts as a trial's first": [[-6.0, -17.0], [-20.0, -33.0], [-11.0, -17.0]],
        },
        "env_steps": [3e6] * 3,
        "command": "metarl bench policy --experiment rl2-nav --seeds 3",
        "machine": "test",
        "figure": "docs/images/policy_rl2_nav.png",
    }
    text = "\n".join(render_rl2_nav(result))
    assert "| RL² (hidden state carried, as trained) | -12.33 ± 5.79 | -9.00 ± 4.55 |" in text
    assert "each seed against itself: +2.00, +5.00, +3.00 (mean +3.33 ± 1.25: interval above zero" in text
    assert "The same comparison across seeds (unpaired): +3.33 (NOT outside the seed spread" in text


def test_robot_table_gives_each_method_its_final_best_and_steps_to_reach() -> None:
    curve = {"env_steps": [1000, 2000, 3000], "heldout_return": [-90.0, -40.0, -50.0]}
    result = {
        "curves": {"RL²": [curve, curve], "MAML-PPO": [curve, curve]},
        "references": {"GrBAL adaptive MPC (model-based)": -10.0, "fixed nominal controller": -45.0},
        "grbal_env_steps": 38400,
        "steps_to_reach": {
            "RL²": {"GrBAL adaptive MPC (model-based)": [None, None], "fixed nominal controller": [2000, 2000]},
            "MAML-PPO": {"GrBAL adaptive MPC (model-based)": [None, None], "fixed nominal controller": [None, 2000]},
        },
        "env_steps": {"RL²": [3000, 3000], "MAML-PPO": [3000, 3000]},
        "held_out": {"split": "interp", "tasks": 8, "episodes": 2, "episode_s": 2.0},
        "command": "metarl bench policy --experiment robot --seeds 2",
        "machine": "test",
        "figure": "docs/images/policy_robot.png",
    }
    text = "\n".join(render_robot(result))
    assert "| RL² | -50.00 ± 0.00 | -40.00 ± 0.00 | 3e+03 per seed |" in text
    assert "| GrBAL adaptive MPC (model-based) | -10.00 | | 38,400 |" in text
    assert "| fixed nominal controller | -45.00 | | none (hand-designed) |" in text
    assert "| MAML-PPO | fixed nominal controller (-45.00) | not reached in 3,000, 2,000 | 38,400 |" in text


def test_robot_targets_are_met_only_when_every_seed_beats_the_nominal_controller_on_its_resets() -> None:
    """RL²'s episode 2 is judged against the nominal controller's episode 2, MAML-PPO after its
    step against the nominal controller on MAML-PPO's own post-step resets, split by split."""
    references = {
        "GrBAL adaptive MPC (model-based)": [-1.0, -1.2],
        "fixed nominal controller": [-6.0, -5.0],
        "fixed nominal controller, on MAML-PPO's post-step resets": [-6.0] * 8,
    }
    result = {
        "final_scores": {
            "interp": {"RL²": [[-5.5, -4.5], [-5.8, -4.9]], "MAML-PPO": [[-6.1, -5.9], [-6.2, -5.0]]},
            "extrap": {"RL²": [[-5.5, -4.5], [-5.8, -5.1]], "MAML-PPO": [[-6.1, -6.5], [-6.2, -5.0]]},
        },
        "references_per_episode": {"interp": references, "extrap": references},
        "held_out": {"split": "interp", "tasks": 8, "episodes": 2, "episode_s": 2.0},
        "env_steps": {"RL²": [3000, 3000], "MAML-PPO": [4000, 4000]},
        "training_minutes": {"RL²": [5.0, 5.5], "MAML-PPO": [7.0, 7.5]},
    }
    text = "\n".join(render_robot_targets(result))
    assert "- interp, RL² episode 2 vs nominal -5.00: +0.50, +0.10 (2 of 2 seeds above: met)" in text
    assert "- extrap, RL² episode 2 vs nominal -5.00: +0.50, -0.10 (1 of 2 seeds above: NOT met)" in text
    assert "- interp, MAML-PPO after its step vs nominal -6.00: +0.10, +1.00 (2 of 2 seeds above: met)" in text
    assert "distance to the adaptive MPC (-1.20): -3.50" in text
    assert "- extrap, MAML-PPO after its step vs nominal -6.00: -0.50, +1.00 (1 of 2 seeds above: NOT met)" in text
    assert "| RL² (one trial) | -5.65 ± 0.15 | -4.70 ± 0.20 |" in text

"""The parts of a hand-made results.json that the leaderboard tests do not vary."""

from __future__ import annotations

from typing import Any


def handmade_rest(budgets: list[int]) -> dict[str, Any]:
    """The fields of a hand-made results.json besides its arms, budgets and oracle: no search,
    positions, convergence or after-hit effect; one repeat at ``budgets``; a 20 + 10 episode set."""
    return {
        "search": None,
        "accuracy_by_position": {"fraction_bin_edges": [], "budgets": []},
        "convergence": {"budgets": []},
        "after_hit": None,
        "settings": {
            "budgets": budgets,
            "repeats": 1,
            "seed": 0,
            "scratch_schedule": "same",
            "training": {},
            "hidden": 8,
            "include_after_hit": False,
            "optional_runs": None,
            "validation": "budget",
            "validation_min_budget": 4,
            "bootstrap": "",
        },
        "data": {
            "path": "d",
            "test_path": "t",
            "label_names": ["left", "right"],
            "frame_size": [8, 8],
            "train_episodes": 20,
            "val_episodes": 0,
            "test_episodes": 10,
            "test_episode_ids": [],
        },
        "command": "",
        "seconds": 0.0,
    }

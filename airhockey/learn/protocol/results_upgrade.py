"""Older ``results.json`` files as the current format: version 0 (no ``format_version``) to 1, and
1 to 2. Each upgrade fills in what later writers added as absent and moves what a later format
keeps elsewhere; it computes nothing new, and values that do not fit are passed on for the typed
reader (``results.results_of``) to name."""

from __future__ import annotations

from typing import Any


def upgrade_results(data: dict[str, Any]) -> dict[str, Any]:
    """Plain data of a results.json of version 0 (no ``format_version``) or 1 as version 2."""
    if data.get("format_version", 0) == 0:
        data = upgrade_v0(data)
    if data.get("format_version") == 1:
        data = upgrade_v1(data)
    return data


_ADDED_AFTER_V0 = {
    "frames_k_budget": None,
    "frames_k_difference": None,
    "oracle_frames_k": {},
    "search": None,
    "probes": None,
    "after_hit": None,
    "oracle": [],
}
"""Top-level fields that results.json files without a format version may lack, and their values."""


def upgrade_v0(data: dict[str, Any]) -> dict[str, Any]:
    """Plain data of a results.json without ``format_version`` as version 1: the fields that later
    writers added are filled in as absent (None), and the version is set."""
    out: dict[str, Any] = {"format_version": 1}
    out.update({k: v for k, v in data.items() if k != "format_version"})
    for key, value in _ADDED_AFTER_V0.items():
        out.setdefault(key, value)
    if isinstance(out.get("settings"), dict):
        out["settings"] = {"optional_runs": None, **out["settings"]}
        out["settings"].setdefault("validation", "split")
    for budget in _dicts(out.get("convergence"), "budgets"):
        for summary in _arm_values(budget):
            summary.setdefault("steps", None)
            summary.setdefault("area_under_curve", None)
            summary.setdefault("steps_to_95pct_of_final", None)
    for budget in _dicts(out.get("accuracy_by_position"), "budgets"):
        for summary in _arm_values(budget):
            summary.setdefault("earliest_fraction_ci95", None)
            summary.setdefault("most_frames_before_hit_ci95", None)
    return out


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Plain data of a version 1 results.json as version 2: every budget, oracle, position and
    convergence entry at k = 1 with no other supervised baselines, and the k > 1 runs of the one
    budget version 1 ran them at (``frames_k``, ``frames_k_difference``, ``oracle_frames_k``) as
    ``by_k`` and ``oracle_by_k`` entries of that budget. Values that do not fit are passed on for
    the typed reader to name."""
    out = {k: v for k, v in data.items() if k not in ("frames_k", "frames_k_difference", "oracle_frames_k")}
    out["format_version"] = 2
    for budget in _dicts(out, "budgets"):
        budget.setdefault("context_frames", 1)
        budget.setdefault("to_baselines", {})
    for entries in (_dicts(out, "oracle"), _dicts(out.get("accuracy_by_position"), "budgets")):
        for entry in entries:
            entry.setdefault("context_frames", 1)
    for entry in _dicts(out.get("convergence"), "budgets"):
        entry.setdefault("context_frames", 1)
    by_arm, differences, oracle = (
        value if isinstance(value := data.get(key), dict) else {}
        for key in ("frames_k", "frames_k_difference", "oracle_frames_k")
    )
    budgets = _dicts(out, "budgets")
    at = data.get("frames_k_budget") or (budgets[-1].get("labelled_episodes") if budgets else None)
    label = next((b.get("budget") for b in budgets if b.get("labelled_episodes") == at), at)
    by_arm = {a: v for a, v in by_arm.items() if isinstance(v, dict)}
    ks = sorted({k for v in by_arm.values() for k in v if str(k).isdigit()}, key=int)
    out["by_k"] = [
        {
            "labelled_episodes": at,
            "budget": label,
            "arms": {arm: v[k] for arm, v in by_arm.items() if k in v},
            "paired_difference": {a: v[k] for a, v in differences.items() if isinstance(v, dict) and k in v},
            "context_frames": int(k),
            "to_baselines": {},
        }
        for k in ks
        if int(k) != 1
    ]
    out["oracle_by_k"] = [
        {"labelled_episodes": at, "context_frames": int(k), **models}
        for k, models in sorted(oracle.items(), key=lambda item: int(item[0]) if item[0].isdigit() else 0)
        if k.isdigit() and int(k) != 1 and isinstance(models, dict)
    ]
    out["frames_k_budget"] = at if out["by_k"] else None
    return out


def _dicts(parent: Any, key: str) -> list[dict[str, Any]]:
    items = parent.get(key) if isinstance(parent, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _arm_values(budget: dict[str, Any]) -> list[dict[str, Any]]:
    arms = budget.get("arms")
    return [v for v in arms.values() if isinstance(v, dict)] if isinstance(arms, dict) else []

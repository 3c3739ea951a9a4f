"""Rows, markdown table and plot of the privacy-utility benchmark.

A row is one generator (a trained model at one epsilon, or a baseline) with the figures
taken from medgan's evaluation sections.  This module only reads and formats them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["row_from_sections", "beats_baselines", "markdown_table", "plot_curves"]


def _entry(node: Any, *path: str) -> dict[str, Any] | None:
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, dict) else None


def _estimate(node: Any, *path: str) -> dict[str, float | None]:
    entry = _entry(node, *path) or {}
    return {key: entry.get(key) for key in ("value", "ci_low", "ci_high")}


def row_from_sections(method: str, epsilon_target: float | None, sections: dict[str, Any], *, wall_s: float, canaries: dict[str, Any], privacy: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return one table row from evaluation sections (a report.json or an evaluate_sets result)."""
    fidelity = sections.get("fidelity", {})
    utility_task = _entry(sections, "utility", "tasks", "lesion") or {}
    privacy = privacy or {}
    return {
        "method": method,
        "epsilon_target": epsilon_target,
        "epsilon": privacy.get("epsilon"),
        "noise_multiplier": privacy.get("noise_multiplier"),
        "noise_to_signal": privacy.get("noise_to_signal"),
        "fid": _estimate(fidelity, "fid", "synthetic_vs_train"),
        "fid_floor": _estimate(fidelity, "fid", "holdout_vs_train"),
        "kid": _estimate(fidelity, "kid", "synthetic_vs_train"),
        "kid_floor": _estimate(fidelity, "kid", "holdout_vs_train"),
        "mmd": _estimate(fidelity, "mmd", "synthetic_vs_train"),
        "ms_ssim": _estimate(fidelity, "ms_ssim_synthetic"),
        "ms_ssim_real": _estimate(fidelity, "ms_ssim_real"),
        "tstr": _estimate(utility_task, "train_synthetic"),
        "trtr": _estimate(utility_task, "train_real"),
        "mia_auc": _estimate(sections, "attack", "mia_auc"),
        "copies_flagged": len(_entry(sections, "memorization") and sections["memorization"].get("flagged", []) or []),
        "canaries": canaries,
        "wall_s": round(float(wall_s), 1),
    }


def beats_baselines(row: dict[str, Any], baselines: list[dict[str, Any]]) -> bool | None:
    """Return whether the row's FID interval lies wholly below every baseline's; None when unknown."""
    high = row["fid"].get("ci_high")
    lows = [baseline["fid"].get("ci_low") for baseline in baselines]
    if high is None or not baselines or any(low is None for low in lows):
        return None
    return bool(high < min(lows))


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 0.01:
        return f"{value:.3g}"
    return f"{value:.2e}"


def _with_interval(estimate: dict[str, float | None]) -> str:
    text = _number(estimate.get("value"))
    if estimate.get("ci_low") is not None and estimate.get("ci_high") is not None:
        text += f" [{_number(estimate['ci_low'])}, {_number(estimate['ci_high'])}]"
    return text


def _epsilon_text(row: dict[str, Any]) -> str:
    if row["epsilon_target"] is None:
        return "none"
    reported = row.get("epsilon")
    return f"{_number(reported)}" if reported is not None else f"{row['epsilon_target']:g}"


def markdown_table(rows: list[dict[str, Any]], floor: dict[str, Any] | None = None) -> str:
    """Return the benchmark table in markdown; ``floor`` adds the holdout-vs-train row."""
    header = [
        "method",
        "epsilon",
        "noise/signal",
        "FID [95% CI]",
        "KID [95% CI]",
        "MMD",
        "MS-SSIM",
        "TSTR bal. acc.",
        "MIA AUC",
        "copies",
        "canaries",
        "beats baselines",
        "wall s",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    if floor is not None:
        lines.append(
            "| real holdout (noise floor) | | | "
            + f"{_with_interval(floor['fid_floor'])} | {_with_interval(floor['kid_floor'])} | | "
            + f"{_number(floor['ms_ssim_real'].get('value'))} | {_with_interval(floor['trtr'])} | | | | | |"
        )
    for row in rows:
        canaries = row["canaries"]
        canary_text = f"{canaries.get('reproduced', 'n/a')}/{canaries.get('synthetic', 'n/a')}"
        beats = row.get("beats_baselines")
        if row["method"].startswith("baseline"):
            beats_text = "baseline"
        elif beats is None:
            beats_text = "n/a"
        else:
            beats_text = "yes" if beats else "no"
        lines.append(
            "| "
            + " | ".join(
                [
                    row["method"],
                    _epsilon_text(row),
                    _number(row.get("noise_to_signal")),
                    _with_interval(row["fid"]),
                    _with_interval(row["kid"]),
                    _number(row["mmd"].get("value")),
                    _number(row["ms_ssim"].get("value")),
                    _with_interval(row["tstr"]),
                    _with_interval(row["mia_auc"]),
                    str(row["copies_flagged"]),
                    canary_text,
                    beats_text,
                    _number(row["wall_s"]),
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def _x_position(epsilon: float | None, none_at: float) -> float:
    return none_at if epsilon is None else float(epsilon)


def plot_curves(rows: list[dict[str, Any]], floor: dict[str, Any] | None, path: Path, title: str) -> Path:
    """Draw FID, TSTR accuracy and MIA AUC against epsilon for models and baselines; save a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finite = [row["epsilon_target"] for row in rows if row["epsilon_target"] is not None]
    none_at = 2.0 * max(finite) if finite else 16.0
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    series = {
        "DP-GAN (medgan)": [row for row in rows if row["method"] == "medgan"],
        "DP voxel Gaussian": [row for row in rows if row["method"] == "baseline: voxel Gaussian"],
    }
    panels = (("fid", "FID (lower is better)"), ("tstr", "TSTR balanced accuracy"), ("mia_auc", "MIA AUC (0.5 = chance)"))
    for axis, (metric, label) in zip(axes, panels):
        for name, members in series.items():
            members = sorted(members, key=lambda row: _x_position(row["epsilon_target"], none_at))
            points = [(row, row[metric]) for row in members if row[metric].get("value") is not None]
            if not points:
                continue
            x = [_x_position(row["epsilon_target"], none_at) for row, _ in points]
            y = [estimate["value"] for _, estimate in points]
            low = [estimate["value"] - (estimate["ci_low"] if estimate["ci_low"] is not None else estimate["value"]) for _, estimate in points]
            high = [(estimate["ci_high"] if estimate["ci_high"] is not None else estimate["value"]) - estimate["value"] for _, estimate in points]
            axis.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, label=name)
        for row in rows:
            if row["method"] == "baseline: blurred training scans" and row[metric].get("value") is not None:
                axis.axhline(row[metric]["value"], color="grey", linestyle="--", label="blurred training scans (not private)")
        if floor is not None:
            reference = {"fid": floor["fid_floor"], "tstr": floor["trtr"], "mia_auc": {"value": 0.5}}[metric]
            if reference.get("value") is not None:
                name = {"fid": "real holdout (noise floor)", "tstr": "trained on real", "mia_auc": "chance"}[metric]
                axis.axhline(reference["value"], color="black", linestyle=":", label=name)
        axis.set_xscale("log")
        ticks = sorted(set(finite)) + [none_at]
        axis.set_xticks(ticks)
        axis.set_xticklabels([f"{tick:g}" for tick in sorted(set(finite))] + ["none"])
        axis.minorticks_off()
        axis.set_xlabel("epsilon")
        axis.set_title(label, fontsize=10)
    handles, labels = [], []
    for axis in axes:
        for handle, text in zip(*axis.get_legend_handles_labels()):
            if text not in labels:
                handles.append(handle)
                labels.append(text)
    figure.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout(rect=(0, 0.1, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path

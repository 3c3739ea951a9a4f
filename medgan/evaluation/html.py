"""Render an evaluation result as an HTML fragment with tables and embedded plots.

The fragment is included in the pipeline's ``report.html`` and wrapped into a full page
by ``medgan evaluate``. Plots are PNG images embedded as base64 data URIs, so the page
is one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

__all__ = ["render_evaluation_html", "render_evaluation_page"]

_FEATURE_METRICS = ("fid", "kid", "mmd")


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def _estimate_cell(entry: Any) -> str:
    """Return "value [low, high]" or the not-computable reason with its counts."""
    if not isinstance(entry, dict):
        return _number(entry)
    if entry.get("status") == "not computable":
        counts = ", ".join(f"{key} {value}" for key, value in entry.get("counts", {}).items())
        return f"<em>not computable</em>: {html.escape(entry.get('reason', ''))} ({html.escape(counts)})"
    text = _number(entry.get("value"))
    if entry.get("ci_low") is not None and entry.get("ci_high") is not None:
        text += f" [{_number(entry['ci_low'])}, {_number(entry['ci_high'])}]"
    if entry.get("note"):
        text += f"<br><small>{html.escape(entry['note'])}</small>"
    return text


def _image(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{encoded}">'


def _metric_plot(fidelity: dict[str, Any]) -> str:
    """Bar chart of each feature distance with its interval, beside its holdout noise floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name in _FEATURE_METRICS if isinstance(fidelity.get(name), dict)]
    if not names:
        return ""
    figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8))
    axes = list(axes) if len(names) > 1 else [axes]
    for axis, name in zip(axes, names):
        for position, (label, colour) in enumerate((("synthetic_vs_train", "tab:blue"), ("holdout_vs_train", "tab:gray"))):
            entry = fidelity[name].get(label, {})
            value = entry.get("value")
            if value is None:
                axis.text(position, 0, "n/a", ha="center")
                continue
            low, high = entry.get("ci_low"), entry.get("ci_high")
            error = [[max(value - low, 0)], [max(high - value, 0)]] if low is not None and high is not None else None
            axis.bar(position, value, color=colour, yerr=error, capsize=4)
        axis.set_xticks([0, 1], ["synthetic", "holdout\n(noise floor)"])
        axis.set_title(name.upper())
    figure.tight_layout()
    return _image(figure)


def _similarity_plot(memorization: dict[str, Any]) -> str:
    """Histogram of nearest-training similarities of synthetic and holdout scans with the copy threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    synthetic = [row["similarity_train"] for row in memorization.get("per_scan", []) if row.get("similarity_train") is not None]
    threshold = memorization.get("threshold", {})
    holdout = [1.0 - d for d in threshold.get("holdout_distances", [])]
    if not synthetic:
        return ""
    figure, axis = plt.subplots(figsize=(6, 2.8))
    low = min(synthetic + holdout + [threshold.get("similarity_threshold") or 1.0])
    bins = [low + (1.0 - low) * i / 30 for i in range(31)] if low < 1.0 else 10
    axis.hist(synthetic, bins=bins, alpha=0.7, label="synthetic to nearest train", color="tab:blue")
    if holdout:
        axis.hist(holdout, bins=bins, alpha=0.5, label="holdout to nearest train", color="tab:gray")
    if threshold.get("similarity_threshold") is not None:
        axis.axvline(threshold["similarity_threshold"], color="tab:red", linestyle="--", label="copy threshold")
    axis.set_xlabel("similarity (NCC after alignment)")
    axis.set_ylabel("scans")
    axis.legend(fontsize=7)
    figure.tight_layout()
    return _image(figure)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table class='medgan-eval'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fidelity_html(fidelity: dict[str, Any]) -> str:
    rows = []
    for name in _FEATURE_METRICS:
        entry = fidelity.get(name, {})
        rows.append([name.upper(), _estimate_cell(entry.get("synthetic_vs_train")), _estimate_cell(entry.get("holdout_vs_train"))])
    for name in ("histogram", "anatomy"):
        entry = fidelity.get(name, {})
        for key, value in entry.get("synthetic_vs_train", {}).items():
            floor = entry.get("holdout_vs_train", {}).get(key)
            rows.append([html.escape(f"{name}: {key}"), _number(value), _number(floor)])
    parts = ["<h3>Fidelity</h3>", _table(["metric", "synthetic vs train [95% CI]", "holdout vs train (noise floor)"], rows)]
    diversity = [
        ["MS-SSIM within synthetic", _estimate_cell(fidelity.get("ms_ssim_synthetic"))],
        ["MS-SSIM within real (train)", _estimate_cell(fidelity.get("ms_ssim_real"))],
        ["MS-SSIM within holdout", _estimate_cell(fidelity.get("ms_ssim_holdout"))],
    ]
    parts.append(_table(["diversity (lower is more diverse)", "mean over random pairs [95% CI]"], diversity))
    conditions = fidelity.get("per_condition", {})
    if conditions:
        rows = []
        for condition, entry in conditions.items():
            if entry.get("status") == "not computable":
                rows.append([html.escape(condition), _estimate_cell(entry), ""])
                continue
            for name in _FEATURE_METRICS:
                rows.append([html.escape(f"{condition} {name.upper()}"), _estimate_cell(entry[name].get("synthetic_vs_train")), _estimate_cell(entry[name].get("holdout_vs_train"))])
        parts.append(_table(["condition", "synthetic vs train", "holdout vs train"], rows))
    parts.append(_metric_plot(fidelity))
    return "".join(parts)


def _memorization_html(memorization: dict[str, Any]) -> str:
    flagged = memorization.get("flagged", [])
    verdict = (
        f"<p class='medgan-flag'><strong>{len(flagged)} synthetic scan(s) flagged as copies of training scans; "
        "by default this blocks release of the set.</strong></p>"
        if flagged
        else "<p>No synthetic scan is flagged as a copy of a training scan.</p>"
    )
    rows = [
        [html.escape(entry["synthetic"]), html.escape(entry["nearest_train"]), _number(entry["similarity"]), _number(entry["threshold"])]
        for entry in flagged
    ]
    parts = ["<h3>Memorization</h3>", verdict, f"<p><small>Rule: {html.escape(memorization.get('rule', ''))}</small></p>"]
    if rows:
        parts.append(_table(["synthetic", "nearest training scan", "similarity", "threshold"], rows))
    closest = sorted(
        (row for row in memorization.get("per_scan", []) if row.get("similarity_train") is not None),
        key=lambda row: row["similarity_train"],
        reverse=True,
    )[:10]
    if closest:
        parts.append("<p>The synthetic scans closest to a training scan:</p>")
        parts.append(
            _table(
                ["synthetic", "nearest training scan", "similarity", "nearest holdout scan", "similarity", "distance ratio", "flagged"],
                [
                    [
                        html.escape(row["synthetic"]),
                        html.escape(str(row.get("nearest_train", ""))),
                        _number(row.get("similarity_train")),
                        html.escape(str(row.get("nearest_holdout", ""))),
                        _number(row.get("similarity_holdout")),
                        _number(row.get("distance_ratio")),
                        _number(bool(row.get("flagged", not row.get("authentic", True)))),
                    ]
                    for row in closest
                ],
            )
        )
    ratio = memorization.get("distance_ratio", {})
    copying = memorization.get("data_copying_test", {})
    parts.append(
        _table(
            ["statistic", "value"],
            [
                ["distance ratio (synthetic / holdout, to train)", _number(ratio.get("value"))],
                ["data-copying test C_T (Meehan et al. 2020)", _estimate_cell(copying)],
            ],
        )
    )
    parts.append(_similarity_plot(memorization))
    return "".join(parts)


def _attack_html(attack: dict[str, Any]) -> str:
    rows = [
        ["membership attack AUC", _estimate_cell(attack.get("mia_auc"))],
        ["TPR at 1% FPR", _estimate_cell(attack.get("tpr_at_1pct_fpr"))],
    ]
    return (
        "<h3>Membership inference</h3>"
        + f"<p><small>{html.escape(attack.get('method', ''))}</small></p>"
        + _table(["attack", "value [95% CI]"], rows)
        + f"<p><em>{html.escape(attack.get('statement', ''))}</em></p>"
    )


def _utility_html(utility: dict[str, Any]) -> str:
    if utility.get("status") != "done":
        return f"<h3>Utility</h3><p>Skipped: {html.escape(utility.get('reason', ''))}</p>"
    rows = []
    for task, entry in utility.get("tasks", {}).items():
        if entry.get("status") == "not computable":
            rows.append([html.escape(task), _estimate_cell(entry), "", ""])
            continue
        rows.append(
            [
                html.escape(task),
                _estimate_cell(entry["train_real"]),
                _estimate_cell(entry["train_synthetic"]),
                _estimate_cell(entry["train_real_plus_synthetic"]),
            ]
        )
    return "<h3>Utility</h3>" + _table(["label", "train real", "train synthetic (TSTR)", "train real + synthetic"], rows)


def render_evaluation_html(result: dict[str, Any]) -> str:
    """Return an HTML fragment (no ``<html>`` element) describing an evaluation result."""
    evaluation = result.get("evaluation", {})
    extractor = evaluation.get("extractor", {})
    header = (
        "<section class='medgan-evaluation'><h2>Evaluation</h2>"
        f"<p>Evaluation id <code>{html.escape(str(evaluation.get('id', '')))}</code>; feature extractor "
        f"{html.escape(str(extractor.get('name', '')))} version {html.escape(str(extractor.get('version', '')))}, "
        f"sha256 <code>{html.escape(str(extractor.get('sha256', '')))}</code>.</p>"
    )
    counts = evaluation.get("counts", {})
    if counts:
        header += "<p>" + ", ".join(f"{html.escape(k)}: {int(v)} scans" for k, v in counts.items()) + "</p>"
    return "".join(
        [
            header,
            _memorization_html(result.get("memorization", {})),
            _attack_html(result.get("attack", {})),
            _fidelity_html(result.get("fidelity", {})),
            _utility_html(result.get("utility", {})),
            "</section>",
        ]
    )


def render_evaluation_page(result: dict[str, Any], title: str = "medgan evaluation") -> str:
    """Return a complete HTML page around :func:`render_evaluation_html`."""
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;}"
        "table.medgan-eval{border-collapse:collapse;margin:0.5em 0;}"
        "table.medgan-eval td,table.medgan-eval th{border:1px solid #bbb;padding:0.2em 0.5em;font-size:0.9em;}"
        ".medgan-flag{color:#a00;}"
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{render_evaluation_html(result)}</body></html>\n"
    )

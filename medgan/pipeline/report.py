"""The run report as a single self-contained HTML page.

Images are embedded as base64 PNG so the page can be mailed or archived alone.  The
page shows only what may leave the private folder: synthetic slices, privacy figures,
evaluation summaries by pseudonymous id, and training curves from an allow-list of
columns that do not touch real scans.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from medgan.runs import RunLayout

__all__ = ["render_report_html", "SAFE_CURVE_COLUMNS"]

logger = logging.getLogger(__name__)

# Training-log columns computed without real scans. The generator loss scores only
# generated samples with the DP discriminator and the spread measures the diversity of
# generated samples, so both are post-processing of a DP output.
SAFE_CURVE_COLUMNS = ("g_loss", "g_spread")

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.45}
h1{margin-bottom:0} .sub{color:#666;margin-top:.2em}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.92em}
th{background:#f3f3f3} .alert{border:2px solid #b00;background:#fee;padding:.6em 1em;margin:1em 0}
.warn{border:1px solid #c80;background:#fff6e0;padding:.5em 1em;margin:.6em 0} .ok{color:#070}
.grid{display:flex;flex-wrap:wrap;gap:12px} .grid figure{margin:0;font-size:.85em;text-align:center}
code{background:#f4f4f4;padding:0 .2em}
"""


def _png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _orthogonal_slices(array: np.ndarray) -> str:
    """Return a PNG data URI with the three central planes of an (X, Y, Z) volume."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y, z = (size // 2 for size in array.shape)
    planes = (array[x, :, :].T, array[:, y, :].T, array[:, :, z].T)  # sagittal, coronal, axial
    low, high = np.percentile(array, [1, 99]) if np.ptp(array) > 0 else (float(array.min()), float(array.min()) + 1.0)
    figure, axes = plt.subplots(1, 3, figsize=(6, 2.1))
    for axis, plane, title in zip(axes, planes, ("sagittal", "coronal", "axial")):
        axis.imshow(plane, cmap="gray", origin="lower", vmin=low, vmax=high)
        axis.set_title(title, fontsize=8)
        axis.axis("off")
    return _png(figure)


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(_fmt(value))}</td></tr>" for key, value in rows)
    return f"<table>{cells}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def _privacy_html(privacy: dict[str, Any]) -> str:
    if not privacy:
        return "<p>No training section.</p>"
    parts = []
    if not privacy.get("private", False):
        parts.append('<div class="alert"><b>NOT PRIVATE.</b> This model was trained without differential privacy. '
                     "Its samples may reproduce training patients and must not leave the site.</div>")
    rows = [
        (key, privacy.get(key))
        for key in (
            "epsilon", "delta", "accountant", "epsilon_prv", "epsilon_rdp", "noise_multiplier", "sample_rate",
            "steps", "max_grad_norm", "unit", "n_patients", "noise_to_signal", "cohort_epsilon_total",
        )
        if key in privacy
    ]
    parts.append(_table(rows))
    for warning in privacy.get("warnings", []):
        parts.append(f'<div class="warn">{html.escape(str(warning))}</div>')
    return "".join(parts)


def _curves_html(layout: RunLayout) -> str:
    if not layout.train_log.exists():
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = []
    for line in layout.train_log.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    columns = [column for column in SAFE_CURVE_COLUMNS if any(column in record for record in records)]
    if not records or not columns:
        return ""
    figure, axes = plt.subplots(1, len(columns), figsize=(4 * len(columns), 2.6), squeeze=False)
    for axis, column in zip(axes[0], columns):
        points = [(record.get("step"), record[column]) for record in records if column in record and record[column] is not None]
        if points:
            steps, values = zip(*points)
            axis.plot(steps, values)
        axis.set_title(column, fontsize=9)
        axis.set_xlabel("step", fontsize=8)
    return f'<h2>Training curves</h2><p>Only curves that do not use real scans are shown.</p><img src="{_png(figure)}">'


def _synthetic_html(report: dict[str, Any], layout: RunLayout, limit: int = 12) -> str:
    import nibabel as nib

    entries = report.get("synthetic", [])
    if not entries:
        return ""
    flagged = {item.get("synthetic") for item in report.get("memorization", {}).get("flagged", [])}
    figures = []
    for entry in entries[:limit]:
        path = layout.synthetic / entry["file"]
        if not path.exists():
            continue
        array = np.asarray(nib.load(str(path)).dataobj, dtype=np.float32)
        labels = ", ".join(f"{key}={value}" for key, value in entry.get("labels", {}).items())
        mark = " <b style='color:#b00'>FLAGGED</b>" if entry["file"] in flagged else ""
        figures.append(
            f'<figure><img src="{_orthogonal_slices(array)}"><figcaption>{html.escape(entry["file"])} '
            f"({html.escape(labels)}){mark}</figcaption></figure>"
        )
    more = f"<p>{len(entries) - limit} more in <code>synthetic/</code>.</p>" if len(entries) > limit else ""
    return f'<h2>Synthetic volumes</h2><div class="grid">{"".join(figures)}</div>{more}'


def _evaluation_html(report: dict[str, Any]) -> str:
    if "fidelity" not in report and "memorization" not in report:
        return ""
    try:
        from medgan.evaluation.html import render_evaluation_html
    except ImportError:
        render_evaluation_html = None
    if render_evaluation_html is not None:
        return render_evaluation_html(report)
    flagged = report.get("memorization", {}).get("flagged", [])
    return "<h2>Evaluation</h2>" + _table(list(report.get("fidelity", {}).items())) + f"<p>{len(flagged)} flagged copies.</p>"


def _stages_html(report: dict[str, Any]) -> str:
    stages = report.get("stages", {})
    if not stages:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{values.get('wall_s', 0):.1f}</td><td>{values.get('peak_rss_mb', 0):.0f}</td></tr>"
        for name, values in stages.items()
    )
    return f"<h2>Stages</h2><table><tr><th>stage</th><th>wall time (s)</th><th>peak RSS (MiB)</th></tr>{rows}</table>"


def _export_html(report: dict[str, Any]) -> str:
    export = report.get("export")
    if not export:
        return ""
    left_out = "".join(
        f"<li>{html.escape(str(item.get('synthetic')))}: {html.escape(str(item.get('reason')))}</li>" for item in export.get("left_out", [])
    )
    return (
        f"<h2>Export (staging)</h2><p>{len(export.get('written', []))} volume(s) staged in <code>export/</code>, "
        f"{len(export.get('left_out', []))} left out.</p><ul>{left_out}</ul><p>{html.escape(export.get('note', ''))}</p>"
    )


def render_report_html(report: dict[str, Any], layout: RunLayout) -> str:
    """Render ``report`` (the report.json payload) as a self-contained HTML page."""
    data = report.get("data", {})
    data_rows = [(key, data.get(key)) for key in ("n_patients", "n_scans", "n_train_patients", "n_holdout_patients", "labels")]
    body = [
        f"<h1>medgan run: {html.escape(str(report.get('run_name', '')))}</h1>",
        f"<p class='sub'>medgan {html.escape(str(report.get('medgan_version', '')))}, "
        f"started {html.escape(str(report.get('created_utc', '')))}</p>",
        "<h2>Privacy</h2>",
        _privacy_html(report.get("privacy", {})),
        "<h2>Data</h2>",
        _table(data_rows),
        _synthetic_html(report, layout),
        _curves_html(layout),
        _evaluation_html(report),
        _export_html(report),
        _stages_html(report),
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>medgan report: {html.escape(str(report.get('run_name', '')))}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )

"""medgan reviewer dashboard (Streamlit).

Started by ``medgan dashboard --runs DIR``, which passes the runs folder in the
``MEDGAN_RUNS_DIR`` environment variable and the reviewer registry in
``MEDGAN_REVIEWER_REGISTRY``.  Query parameters ``run``, ``page`` and ``scan`` select
what opens first, so a link can point at one scan.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import streamlit as st  # noqa: E402
from ui_auth import sign_in_sidebar  # noqa: E402
from ui_common import RunContext  # noqa: E402
from ui_queue import render_queue  # noqa: E402
from ui_reader import render_reader_study  # noqa: E402
from ui_runs import render_run, render_run_table  # noqa: E402
from ui_viewer import render_viewer  # noqa: E402

from medgan.errors import MedganError  # noqa: E402
from medgan.review.approvals import load_report  # noqa: E402
from medgan.review.paths import discover_runs, resolve_inside  # noqa: E402
from medgan.review.registry import ReviewerRegistry  # noqa: E402

RUNS_ENV = "MEDGAN_RUNS_DIR"
PAGES = ("Runs", "Scan viewer", "Review queue", "Reader study")


def _initial(name: str, options: list[str]) -> None:
    # A query parameter selects the view while the widget has no value of its own.
    value = st.query_params.get(name)
    if st.session_state.get(name) not in options and value in options:
        st.session_state[name] = value


def main() -> None:
    st.set_page_config(page_title="medgan review", layout="wide")
    runs_dir = os.environ.get(RUNS_ENV)
    if not runs_dir:
        st.error(f"No runs folder: start the dashboard with `medgan dashboard --runs DIR` (or set {RUNS_ENV}).")
        st.stop()
    runs_root = Path(runs_dir)
    try:
        names = discover_runs(runs_root)
    except MedganError as error:
        st.error(str(error))
        st.stop()

    # Query parameters are read before any widget is drawn: typing into the sign-in form
    # interrupts the first script run, and the requested view must not be lost with it.
    _initial("run", names)
    _initial("page", list(PAGES))
    if "requested_scan" not in st.session_state:
        st.session_state["requested_scan"] = st.query_params.get("scan")

    st.sidebar.title("medgan review")
    identity = sign_in_sidebar(ReviewerRegistry())
    if not names:
        st.info(f"No runs with a report.json under {runs_root.name}/ yet.")
        st.stop()

    run = st.sidebar.selectbox("Run", names, key="run")
    page = st.sidebar.radio("Page", PAGES, key="page")
    # The address bar follows the selection, so a reload or a shared link opens the same view.
    st.query_params.update(run=run, page=page)

    try:
        run_dir = resolve_inside(runs_root, run)
        report = load_report(run_dir)
    except MedganError as error:
        st.error(str(error))
        st.stop()
    context = RunContext(runs_root=runs_root, name=run, path=run_dir, report=report)
    if not (report.get("privacy") or {}).get("private"):
        st.sidebar.error("NOT PRIVATE run")

    if page == "Runs":
        st.title("Runs")
        render_run_table([(name, _safe_report(runs_root, name)) for name in names])
        render_run(context, identity)
    elif page == "Scan viewer":
        st.title("Scan viewer")
        files = [entry.get("file") for entry in context.synthetic if entry.get("file")]
        if not files:
            st.info("This run has no synthetic scans.")
            st.stop()
        requested = st.session_state.get("requested_scan")
        if st.session_state.get("viewer_scan") not in files and requested in files:
            st.session_state["viewer_scan"] = requested
        file = st.selectbox("Synthetic scan", files, key="viewer_scan")
        st.query_params["scan"] = file
        render_viewer(context, identity, file)
    elif page == "Review queue":
        st.title("Review queue")
        render_queue(context, identity)
    else:
        st.title("Blinded reader study")
        render_reader_study(context, identity)


def _safe_report(runs_root: Path, name: str) -> dict:
    try:
        return load_report(resolve_inside(runs_root, name))
    except MedganError:
        return {}


# Streamlit runs this file as __main__; the guard keeps a multiprocessing "spawn" child,
# which re-imports the parent's main module as __mp_main__, from starting the app.
if __name__ == "__main__":
    main()

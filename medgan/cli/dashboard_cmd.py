"""``medgan dashboard``: start the Streamlit reviewer dashboard on a runs folder."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import click

from medgan.errors import ConfigError, InputError

__all__ = ["dashboard", "find_app", "streamlit_command"]

logger = logging.getLogger(__name__)


def find_app() -> Path:
    """Return ``dashboards/app.py`` beside the installed ``medgan`` package (repository or editable install).

    Raises:
        InputError: the dashboard files are not installed.
    """
    import medgan

    package = Path(medgan.__file__).resolve().parent
    for candidate in (package / "dashboards" / "app.py", package.parent / "dashboards" / "app.py"):
        if candidate.is_file():
            return candidate
    raise InputError(f"dashboards/app.py not found beside {package}; install medgan from its repository (pip install -e .)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def streamlit_command(app: Path, host: str, port: int, secrets: Path | None = None) -> list[str]:
    """Return the ``streamlit run`` command line for ``app`` on ``host:port``.

    Usage statistics are off (the machine may have no route out, and nothing about a
    review session should leave the site), the file watcher is off (the runs folder may
    be large), and XSRF protection stays on.
    """
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--server.enableXsrfProtection", "true",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    if secrets is not None:
        command += ["--secrets.files", str(secrets)]
    return command


@click.command("dashboard")
@click.option("--runs", "runs", required=True, type=click.Path(path_type=Path), help="Folder that contains the run folders to review.")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535), help="TCP port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; anything but loopback exposes scans to the network.")
@click.option("--registry", type=click.Path(path_type=Path), default=None, help="Reviewer registry JSON (default: $MEDGAN_REVIEWER_REGISTRY or ~/.config/medgan/reviewers.json).")
@click.option(
    "--secrets",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Streamlit secrets.toml with an [auth] section for the site's OpenID Connect provider (default: .streamlit/secrets.toml of the current folder).",
)
def dashboard(runs: Path, port: int, host: str, registry: Path | None, secrets: Path | None) -> None:
    """Start the reviewer dashboard on a runs folder and wait until it stops (Ctrl+C)."""
    if not runs.is_dir():
        raise InputError(f"runs folder {runs} not found; pass the folder that contains your run folders")
    if not host.strip():
        raise ConfigError("--host is empty; use 127.0.0.1 unless the site's network team asks for another address")
    if not _is_loopback(host):
        logger.warning("binding to %s: anyone who can reach this address can load the dashboard; put it behind the site's proxy and identity provider", host)
    app = find_app()
    environment = dict(os.environ)
    environment["MEDGAN_RUNS_DIR"] = str(runs.resolve())
    if registry is not None:
        environment["MEDGAN_REVIEWER_REGISTRY"] = str(registry.resolve())
    command = streamlit_command(app, host, port, secrets.resolve() if secrets is not None else None)
    click.echo(f"medgan dashboard on http://{host}:{port} (runs: {runs})", err=True)
    process = subprocess.Popen(command, env=environment)
    # Without this, a SIGTERM to medgan would end it and leave Streamlit serving scans.
    previous = {number: signal.signal(number, _raise_stop) for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        code = process.wait()
    except (KeyboardInterrupt, _StopRequested):
        _stop(process)
        return
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if code not in (0, -signal.SIGTERM):
        raise click.ClickException(f"streamlit exited with status {code}")


class _StopRequested(Exception):
    """Raised in the main thread by a SIGTERM or SIGHUP handler."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _StopRequested(signum)


def _stop(process: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """Stop Streamlit with SIGTERM, then SIGKILL if it has not exited after ``timeout_s``."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        logger.warning("streamlit did not stop within %.0f s of SIGTERM; killing it", timeout_s)
        process.kill()
        process.wait()

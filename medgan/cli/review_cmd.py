"""``medgan reviewers`` (the local reviewer registry) and ``medgan audit`` (audit-log checks)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from medgan.errors import ReviewError

__all__ = ["reviewers", "audit"]

_REGISTRY_OPTION = click.option(
    "--registry",
    type=click.Path(path_type=Path),
    default=None,
    help="Registry JSON file (default: $MEDGAN_REVIEWER_REGISTRY or ~/.config/medgan/reviewers.json).",
)


@click.group("reviewers")
def reviewers() -> None:
    """Manage who may sign in to the dashboard and with which role."""


@reviewers.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["reviewer", "privacy-officer"]), required=True, help="Role recorded with every decision.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input instead of prompting.")
@click.option("--oidc", is_flag=True, help="No password: NAME is the e-mail address the site's identity provider reports.")
@_REGISTRY_OPTION
def add(name: str, role: str, password_stdin: bool, oidc: bool, registry: Path | None) -> None:
    """Add a reviewer (or replace their role and password)."""
    from medgan.review.registry import ReviewerRegistry

    if oidc and password_stdin:
        raise ReviewError("--oidc reviewers sign in through the identity provider and have no password; drop --password-stdin")
    if oidc:
        password = None
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    target = ReviewerRegistry(registry)
    target.add(name, role, password)
    click.echo(f"added {name} ({role}) to {target.path}")


@reviewers.command("list")
@_REGISTRY_OPTION
def list_reviewers(registry: Path | None) -> None:
    """List registered reviewers and their roles."""
    from medgan.review.registry import ReviewerRegistry

    target = ReviewerRegistry(registry)
    entries = target.list()
    if not entries:
        click.echo(f"no reviewers in {target.path}; add one with `medgan reviewers add NAME --role reviewer`")
        return
    for name, role, has_password in entries:
        click.echo(f"{name}\t{role}\t{'password' if has_password else 'identity provider'}")


@click.group("audit")
def audit() -> None:
    """Check a run's audit log of reviewer decisions."""


@audit.command("verify")
@click.argument("run", type=click.Path(path_type=Path, exists=True, file_okay=False))
def verify(run: Path) -> None:
    """Verify the hash chain, triggers and row counter of RUN/review/audit.sqlite.

    A run without decisions has no audit log yet, which is the normal state of a fresh
    run, so that case passes.  A missing log fails when the run shows that decisions were
    made (a release folder, or SQLite's side files left behind), because then the log was
    removed.
    """
    from medgan.review.approvals import audit_log_path
    from medgan.review.audit import AuditLog

    log = AuditLog(audit_log_path(run))
    if not log.path.exists():
        _check_missing_log(run, log.path)
        click.echo(f"no review decisions recorded yet in {run}; nothing to verify")
        return
    problems = log.verify()
    if problems:
        for problem in problems:
            click.echo(f"FAIL {problem}", err=True)
        raise ReviewError(f"audit log {log.path} failed verification with {len(problems)} problem(s); do not export from this run until it is explained")
    rows = log.rows()
    click.echo(f"OK {log.path}: {len(rows)} rows, chain intact, last hash {log.last_hash()}")


def _check_missing_log(run: Path, path: Path) -> None:
    """Raise unless a missing audit log at ``path`` means that ``run`` has no decisions yet.

    Raises:
        ReviewError: ``run`` is not a run folder (no report.json), or it has a release
            or SQLite side files, which exist only after decisions were recorded.
    """
    if not (run / "report.json").is_file():
        raise ReviewError(
            f"{run} is not a run folder (report.json not found); give the folder that `medgan run` or `medgan train` wrote"
        )
    traces = [name for name in (path.name + "-wal", path.name + "-shm") if (path.parent / name).exists()]
    release = run / "release"
    if release.is_dir() and any(item.is_file() for item in release.rglob("*")):
        traces.append("release/")
    if traces:
        raise ReviewError(
            f"audit log {path} not found, but {run} contains {', '.join(traces)}, which exist only after review "
            "decisions were recorded: the log was removed. Do not export from this run until it is explained"
        )

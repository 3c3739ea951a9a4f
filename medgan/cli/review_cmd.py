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
    """Verify the hash chain, triggers and row counter of RUN/review/audit.sqlite."""
    from medgan.review.approvals import audit_log_path
    from medgan.review.audit import AuditLog

    log = AuditLog(audit_log_path(run))
    problems = log.verify()
    if problems:
        for problem in problems:
            click.echo(f"FAIL {problem}", err=True)
        raise ReviewError(f"audit log {log.path} failed verification with {len(problems)} problem(s); do not export from this run until it is explained")
    rows = log.rows()
    click.echo(f"OK {log.path}: {len(rows)} rows, chain intact, last hash {log.last_hash()}")

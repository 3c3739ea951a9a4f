from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from medgan.errors import ReviewError
from medgan.review.registry import ReviewerRegistry
from medgan.review.trainlog import read_safe_curves


def test_authenticate_right_password(tmp_path: Path) -> None:
    registry = ReviewerRegistry(tmp_path / "r.json")
    registry.add("ana", "reviewer", "correct-horse")
    identity = registry.authenticate("ana", "correct-horse")
    assert (identity.name, identity.role, identity.source) == ("ana", "reviewer", "local")


def test_authenticate_wrong_password(tmp_path: Path) -> None:
    registry = ReviewerRegistry(tmp_path / "r.json")
    registry.add("ana", "reviewer", "correct-horse")
    assert registry.authenticate("ana", "wrong-horse!") is None


def test_authenticate_oidc_only_reviewer(tmp_path: Path) -> None:
    registry = ReviewerRegistry(tmp_path / "r.json")
    registry.add("olga@example.org", "privacy-officer", None)
    assert registry.authenticate("olga@example.org", "") is None
    assert registry.role_of("olga@example.org") == "privacy-officer"


def test_hashes_salted(tmp_path: Path) -> None:
    registry = ReviewerRegistry(tmp_path / "r.json")
    registry.add("ana", "reviewer", "same-password")
    registry.add("ben", "reviewer", "same-password")
    stored = json.loads((tmp_path / "r.json").read_text())["reviewers"]
    assert stored["ana"]["password_hash"] != stored["ben"]["password_hash"]


def test_registry_file_mode(tmp_path: Path) -> None:
    ReviewerRegistry(tmp_path / "r.json").add("ana", "reviewer", "correct-horse")
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o600


@pytest.mark.parametrize(("name", "role", "message"), [("a", "reviewer", "name 'a' is invalid"), ("ana", "admin", "role 'admin' is invalid")], ids=["short-name", "bad-role"])
def test_add_invalid(tmp_path: Path, name: str, role: str, message: str) -> None:
    with pytest.raises(ReviewError, match=message):
        ReviewerRegistry(tmp_path / "r.json").add(name, role, "correct-horse")


def test_safe_curves_drop_discriminator(tmp_path: Path) -> None:
    path = tmp_path / "train_log.jsonl"
    path.write_text('{"step": 1, "epsilon": 0.5, "loss_g": 2.0, "loss_d_real": 0.3, "d_loss": 0.7}\nnot json\n{"step": 2, "epsilon": 0.9, "loss_g": 1.5}\n')
    assert read_safe_curves(path) == {"step": [1.0, 2.0], "epsilon": [0.5, 0.9], "loss_g": [2.0, 1.5]}

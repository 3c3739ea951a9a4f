"""Dashboard flows through Streamlit's AppTest, against tiny run folders on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from .conftest import EVALUATION_ID
from streamlit.testing.v1 import AppTest

from medgan.review.approvals import approved_hashes, scan_states
from medgan.review.registry import ReviewerRegistry

APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
PASSWORDS = {"ana": "ana-password-1", "ben": "ben-password-1", "olga": "olga-password-1"}

pytestmark = pytest.mark.slow


@pytest.fixture()
def app_env(runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    registry = ReviewerRegistry(tmp_path / "reviewers.json")
    registry.add("ana", "reviewer", PASSWORDS["ana"])
    registry.add("ben", "reviewer", PASSWORDS["ben"])
    registry.add("olga", "privacy-officer", PASSWORDS["olga"])
    monkeypatch.setenv("MEDGAN_RUNS_DIR", str(runs_dir))
    monkeypatch.setenv("MEDGAN_REVIEWER_REGISTRY", str(tmp_path / "reviewers.json"))
    return runs_dir / "run-a"


def _start() -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception
    return app


def _sign_in(app: AppTest, name: str, password: str | None = None) -> AppTest:
    app.sidebar.text_input(key="signin_name").input(name)
    app.sidebar.text_input(key="signin_password").input(password or PASSWORDS[name])
    app.sidebar.button(key="sign_in").click().run()
    assert not app.exception
    return app


def _open(app: AppTest, page: str) -> AppTest:
    app.sidebar.radio(key="page").set_value(page).run()
    assert not app.exception
    return app


def _decide(app: AppTest, scan: str, button: str, reason: str) -> AppTest:
    app.selectbox(key="queue_scan").set_value(scan).run()
    reason_key = next(area.key for area in app.text_area if area.key.startswith("override_reason_" if button == "override" else "reason_"))
    app.text_area(key=reason_key).input(reason)
    app.button(key=button).click().run()
    assert not app.exception
    return app


def test_sign_in_wrong_password(app_env: Path) -> None:
    app = _sign_in(_start(), "ana", "not-the-password")
    assert "Sign-in failed" in app.sidebar.error[0].value
    assert len(app.sidebar.success) == 0


def test_typed_name_is_not_identity(app_env: Path) -> None:
    app = _start()
    app.sidebar.text_input(key="signin_name").input("ana")
    app.sidebar.button(key="sign_in").click().run()
    app = _open(app, "Review queue")
    assert "Sign in to review" in app.warning[0].value


def test_runs_page_marks_not_private(runs_dir: Path, app_env: Path) -> None:
    from .conftest import make_run

    make_run(runs_dir, "run-b", private=False)
    app = _start()
    app.sidebar.selectbox(key="run").set_value("run-b").run()
    assert any("NOT PRIVATE" in element.value for element in app.error)


def test_viewer_steps_through_scans(app_env: Path) -> None:
    app = _open(_sign_in(_start(), "ana"), "Scan viewer")
    assert len(app.get("image")) == 6  # three planes, synthetic and nearest training scan
    app.slider(key="viewer_axial").set_value(3).run()
    assert "axial 3" in app.get("image")[0].proto.imgs[0].caption
    app.selectbox(key="viewer_scan").set_value("syn-0002.nii.gz").run()
    assert not app.exception
    assert any("syn-0002.nii.gz" in image.proto.imgs[0].caption for image in app.get("image"))


def test_viewer_hides_training_scan_signed_out(app_env: Path) -> None:
    app = _open(_start(), "Scan viewer")
    assert len(app.get("image")) == 3
    assert any("Sign in to see the nearest training scan" in info.value for info in app.info)


def test_queue_approve_reject_reload(app_env: Path) -> None:
    app = _open(_sign_in(_start(), "ana"), "Review queue")
    _decide(app, "syn-0000.nii.gz", "approve", "anatomy plausible")
    _decide(app, "syn-0002.nii.gz", "reject", "checkerboard artefact")
    reloaded = _open(_sign_in(_start(), "ben"), "Review queue")
    table = reloaded.dataframe[0].value
    statuses = dict(zip(table["scan"], table["status"]))
    assert statuses == {"syn-0001.nii.gz": "pending", "syn-0000.nii.gz": "approved", "syn-0002.nii.gz": "rejected"}


def test_queue_reject_needs_reason(app_env: Path) -> None:
    app = _open(_sign_in(_start(), "ana"), "Review queue")
    _decide(app, "syn-0002.nii.gz", "reject", "")
    assert any("needs a written reason" in element.value for element in app.error)
    assert scan_states(app_env, EVALUATION_ID)[2].status == "pending"


def test_queue_override_second_role(app_env: Path) -> None:
    app = _open(_sign_in(_start(), "ana"), "Review queue")
    _decide(app, "syn-0001.nii.gz", "approve", "not a copy on visual check")
    assert approved_hashes(app_env, EVALUATION_ID) == set()
    officer = _open(_sign_in(_start(), "olga"), "Review queue")
    _decide(officer, "syn-0001.nii.gz", "override", "similarity driven by the empty background")
    flagged_hash = scan_states(app_env, EVALUATION_ID)[0].sha256
    assert approved_hashes(app_env, EVALUATION_ID) == {flagged_hash}
    table = officer.dataframe[0].value
    assert dict(zip(table["scan"], table["status"]))["syn-0001.nii.gz"] == "approved"


def test_queue_reviewer_cannot_override(app_env: Path) -> None:
    app = _open(_sign_in(_start(), "ana"), "Review queue")
    _decide(app, "syn-0001.nii.gz", "approve", "looks fine")
    other = _open(_sign_in(_start(), "ben"), "Review queue")
    other.selectbox(key="queue_scan").set_value("syn-0001.nii.gz").run()
    assert len([button for button in other.button if button.key == "override"]) == 0


def test_reader_study_records_guesses(app_env: Path) -> None:
    app = _open(_sign_in(_start(), "ana"), "Reader study")
    app.button(key="study_start").click().run()
    app.slider(key="study_0_axial").set_value(2).run()
    assert not app.exception
    for _ in range(4):  # one holdout scan and three synthetic scans
        assert len(app.get("image")) == 3
        assert {image.proto.imgs[0].caption for image in app.get("image")} == {"axial", "coronal", "sagittal"}
        app.radio(key="study_guess").set_value("synthetic")
        app.button(key="study_submit").click().run()
        assert not app.exception
    assert "Study finished" in app.main.success[0].value
    scores = app.dataframe[0].value
    assert list(scores["guesses"]) == [4]
    assert list(scores["correct"]) == [3]


def test_query_params_open_scan(app_env: Path) -> None:
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.query_params["page"] = "Scan viewer"
    app.query_params["scan"] = "syn-0002.nii.gz"
    app.run()
    assert app.selectbox(key="viewer_scan").value == "syn-0002.nii.gz"


def test_oidc_configured_hides_password_form(app_env: Path) -> None:
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 32, "client_id": "medgan", "client_secret": "s", "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
    app.run()
    assert [button.key for button in app.sidebar.button] == ["sign_in_oidc"]
    assert len(app.sidebar.text_input) == 0


def test_changed_file_blocks_decision(app_env: Path) -> None:
    import numpy as np
    from .conftest import write_volume

    write_volume(app_env / "synthetic" / "syn-0000.nii.gz", np.ones((16, 16, 16)))
    app = _open(_sign_in(_start(), "ana"), "Review queue")
    _decide(app, "syn-0000.nii.gz", "approve", "looks fine")
    assert any("changed after the evaluation" in element.value for element in app.error)
    assert approved_hashes(app_env, EVALUATION_ID) == set()


def test_tampered_log_shown_in_queue(app_env: Path) -> None:
    import sqlite3

    app = _open(_sign_in(_start(), "ana"), "Review queue")
    _decide(app, "syn-0000.nii.gz", "approve", "looks fine")
    connection = sqlite3.connect(app_env / "review" / "audit.sqlite")
    connection.execute("DROP TRIGGER decisions_no_update")
    connection.execute("UPDATE decisions SET reviewer = 'mallory'")
    connection.commit()
    connection.close()
    app.run()
    assert any("failed verification" in element.value for element in app.error)


def test_constant_volume_displays(runs_dir: Path, app_env: Path) -> None:
    import json

    import numpy as np
    from .conftest import write_volume

    report_path = app_env / "report.json"
    report = json.loads(report_path.read_text())
    report["synthetic"][1]["sha256"] = write_volume(app_env / "synthetic" / "syn-0001.nii.gz", np.zeros((16, 16, 16)))
    report_path.write_text(json.dumps(report))
    app = _open(_start(), "Scan viewer")
    assert len(app.get("image")) == 3


def test_traversal_query_param_ignored(app_env: Path) -> None:
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.query_params["run"] = "../run-a"
    app.run()
    assert app.sidebar.selectbox(key="run").value == "run-a"


def test_evaluation_preview_fallback(app_env: Path) -> None:
    import io
    import json

    from PIL import Image

    id_map_path = app_env / "private" / "id_map.json"
    id_map = json.loads(id_map_path.read_text())
    id_map["scan-000000000001"]["source"] = str(app_env / "gone.nii.gz")
    id_map_path.write_text(json.dumps(id_map))
    (app_env / "private" / "evaluation").mkdir()
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, format="PNG")
    (app_env / "private" / "evaluation" / "nearest-syn-0001.png").write_bytes(buffer.getvalue())
    app = _open(_sign_in(_start(), "ana"), "Scan viewer")
    app.selectbox(key="viewer_scan").set_value("syn-0001.nii.gz").run()
    assert any("Real scan unavailable" in warning.value for warning in app.warning)
    assert "evaluation preview" in app.get("image")[0].proto.imgs[0].caption


def test_sign_in_lockout(app_env: Path) -> None:
    app = _start()
    for _ in range(5):
        app = _sign_in(app, "ana", "wrong-password")
    app = _sign_in(app, "ana")
    assert "Too many failed sign-ins" in app.sidebar.error[0].value
    assert len(app.sidebar.success) == 0


def test_role_change_signs_out(app_env: Path, tmp_path: Path) -> None:
    app = _sign_in(_start(), "olga")
    ReviewerRegistry(tmp_path / "reviewers.json").add("olga", "reviewer", PASSWORDS["olga"])
    app.run()
    assert "registration changed" in app.sidebar.error[0].value


@pytest.mark.parametrize(("labels", "expected"), [({"scan_type": "brain_mr"}, "MR"), ({"scan_type": "chest_ct"}, "CT"), ({"site": "a"}, "CT")], ids=["mr-label", "ct-label", "no-hint"])
def test_scan_modality_from_labels(labels: dict, expected: str) -> None:
    import sys

    sys.path.insert(0, str(APP.parent))
    from ui_common import scan_modality

    report = {"synthetic": [{"file": "syn-0000.nii.gz", "labels": labels, "sha256": "0" * 64}]}
    assert scan_modality(report, "syn-0000.nii.gz")[0] == expected


def test_viewer_offers_no_download(app_env: Path) -> None:
    app = _open(_sign_in(_start(), "ana"), "Scan viewer")
    assert len(app.get("image")) == 6
    assert len(app.get("download_button")) == 0


def test_runs_page_review_summary(app_env: Path) -> None:
    app = _open(_sign_in(_start(), "ana"), "Review queue")
    _decide(app, "syn-0000.nii.gz", "approve", "anatomy plausible")
    runs = _open(app, "Runs")
    assert any("Audit log intact: 1 decision," in element.value for element in runs.success)
    assert any("approved: 1 · pending: 2" in element.value for element in runs.markdown)

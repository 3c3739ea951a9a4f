"""Screenshot of the scan viewer from a real `medgan dashboard` process in headless Chromium.

Set MEDGAN_UPDATE_SCREENSHOT=1 to also write the README image docs/images/dashboard.png.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from .conftest import make_run
from PIL import Image

from medgan.review.registry import ReviewerRegistry

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "dashboards"))
from capture import CHROMIUM, capture  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"headless Chromium not found at {CHROMIUM}; install the Debian package: apt-get install -y chromium"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(port: int, process: subprocess.Popen, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"medgan dashboard exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"medgan dashboard did not answer on port {port}")


def test_scan_viewer_screenshot(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    # The flagged scan comes first, so the viewer opens on it even without query parameters.
    make_run(runs, "chest-ct-dp", size=48, realistic=True, flagged=(0,))
    registry = tmp_path / "reviewers.json"
    ReviewerRegistry(registry).add("ana", "reviewer", "ana-password-1")
    port = _free_port()
    medgan = shutil.which("medgan") or str(Path(sys.executable).parent / "medgan")
    process = subprocess.Popen([medgan, "dashboard", "--runs", str(runs), "--port", str(port), "--registry", str(registry)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(port, process)
        output = tmp_path / "viewer.png"
        url = f"http://127.0.0.1:{port}/?page=Scan+viewer&scan=syn-0000.nii.gz"
        loaded = capture(url, output, min_images=6, width=1400, height=1500, timeout_s=300.0, sign_in=("ana", "ana-password-1"), click_labels=("Scan viewer",))
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert loaded >= 6
    pixels = np.asarray(Image.open(output).convert("L"))
    assert pixels.shape == (1500, 1400)
    # The scan images contribute many grey levels; an empty page has a handful.
    assert len(np.unique(pixels)) > 64
    if os.environ.get("MEDGAN_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(output, REPO / "docs" / "images" / "dashboard.png")

"""Capture a screenshot of a running dashboard with headless Chromium, after its images load.

Chromium's own ``--screenshot`` flag captures when the HTML page has loaded, before
Streamlit has drawn anything over its websocket.  This helper starts Chromium with the
DevTools protocol on a loopback port, waits until the page shows the expected number of
loaded images, then captures.  Used by the screenshot test and to refresh the README
image::

    python dashboards/capture.py http://127.0.0.1:8501/?page=Scan+viewer docs/images/dashboard.png
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["CHROMIUM", "capture"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]

# Counts images that finished decoding in Streamlit's main area (not the sidebar).
_LOADED_IMAGES_JS = "Array.from(document.querySelectorAll('section.stMain img, [data-testid=\"stMain\"] img')).filter(i => i.complete && i.naturalWidth > 0).length"
_RUNNING_JS = "document.querySelector('[data-testid=\"stStatusWidget\"]') !== null"


def _devtools_url(profile: Path, process: subprocess.Popen, timeout_s: float) -> str:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with status {process.returncode} before opening its DevTools port")
        if marker.is_file():
            lines = marker.read_text().split()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.1)
    raise TimeoutError("chromium did not open its DevTools port in time")


def _stop_group(process: subprocess.Popen) -> None:
    # Chromium was started in a new session, so its process group id is its pid.
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def capture(
    url: str,
    output: Path,
    min_images: int = 3,
    width: int = 1400,
    height: int = 1100,
    timeout_s: float = 60.0,
    chromium: str = CHROMIUM,
    sign_in: tuple[str, str] | None = None,
    click_labels: tuple[str, ...] = (),
) -> int:
    """Open ``url`` in headless Chromium, wait for ``min_images`` loaded images, save a PNG.

    ``sign_in`` is a ``(name, password)`` pair typed into the sidebar's local sign-in
    form first, in the same browser session, so the capture shows reviewer-only content.
    ``click_labels`` are widget labels clicked next (a radio option such as
    ``"Scan viewer"``), so the view does not depend on the URL's query parameters alone.

    Returns:
        the number of loaded images at capture time.

    Raises:
        TimeoutError: the images did not load within ``timeout_s``.
    """
    from websockets.sync.client import connect

    # Chromium's helper processes may still be writing to the profile while it is removed.
    with tempfile.TemporaryDirectory(prefix="medgan-chromium-", ignore_cleanup_errors=True) as profile_dir:
        profile = Path(profile_dir)
        process = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so the helpers stop with it
        )
        try:
            browser_url = _devtools_url(profile, process, timeout_s)
            counter = itertools.count(1)
            with connect(browser_url, max_size=64 * 1024 * 1024, open_timeout=timeout_s) as socket:

                def call(method: str, params: dict | None = None, session: str | None = None) -> dict:
                    message_id = next(counter)
                    message = {"id": message_id, "method": method, "params": params or {}}
                    if session:
                        message["sessionId"] = session
                    socket.send(json.dumps(message))
                    while True:
                        reply = json.loads(socket.recv(timeout=timeout_s))
                        if reply.get("id") == message_id:
                            if "error" in reply:
                                raise RuntimeError(f"DevTools {method} failed: {reply['error']}")
                            return reply.get("result", {})

                target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
                session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
                call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
                call("Page.enable", {}, session)
                call("Page.navigate", {"url": url}, session)

                def wait_for(expression: str, what: str) -> None:
                    end = time.monotonic() + timeout_s
                    while time.monotonic() < end:
                        if call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)["result"].get("value"):
                            return
                        time.sleep(0.25)
                    raise TimeoutError(f"{url}: {what} did not appear within {timeout_s:.0f} s")

                if sign_in is not None:
                    # Typing while the first script run is still going would interrupt it.
                    wait_for(f"document.querySelector('input[aria-label=\"Reviewer name\"]') !== null && !({_RUNNING_JS})", "the idle sign-in form")
                    for label, text in zip(("Reviewer name", "Password"), sign_in):
                        selector = f'input[aria-label="{label}"]'
                        wait_for(f"document.querySelector('{selector}') !== null", f"the {label} field")
                        call("Runtime.evaluate", {"expression": f"document.querySelector('{selector}').focus()"}, session)
                        call("Input.insertText", {"text": text}, session)
                        for kind in ("keyDown", "keyUp"):
                            call("Input.dispatchKeyEvent", {"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}, session)
                        time.sleep(0.5)
                    call("Runtime.evaluate", {"expression": "Array.from(document.querySelectorAll('button')).find(b => b.innerText.trim() === 'Sign in').click()"}, session)
                    wait_for("document.body.innerText.includes('Signed in as')", "the signed-in message")
                for text in click_labels:
                    finder = f"Array.from(document.querySelectorAll('label')).find(l => l.innerText.trim() === {json.dumps(text)})"
                    wait_for(f"{finder} !== undefined", f"the {text!r} control")
                    call("Runtime.evaluate", {"expression": f"{finder}.click()"}, session)
                    time.sleep(0.5)
                deadline = time.monotonic() + timeout_s
                loaded = 0
                while time.monotonic() < deadline:
                    loaded = call("Runtime.evaluate", {"expression": _LOADED_IMAGES_JS, "returnByValue": True}, session)["result"].get("value", 0)
                    running = call("Runtime.evaluate", {"expression": _RUNNING_JS, "returnByValue": True}, session)["result"].get("value", False)
                    if loaded >= min_images and not running:
                        break
                    time.sleep(0.25)
                else:
                    # Keep what the page showed, so a timeout can be diagnosed.
                    failed = Path(output).with_suffix(".timeout.png")
                    failed.write_bytes(base64.b64decode(call("Page.captureScreenshot", {"format": "png"}, session)["data"]))
                    raise TimeoutError(f"{url} showed {loaded} loaded images after {timeout_s:.0f} s; expected {min_images} (page saved to {failed})")
                time.sleep(0.5)  # let the last layout pass settle
                data = call("Page.captureScreenshot", {"format": "png"}, session)["data"]
        finally:
            _stop_group(process)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(base64.b64decode(data))
    return int(loaded)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python dashboards/capture.py URL OUTPUT.png")
    print(capture(sys.argv[1], Path(sys.argv[2])), "images captured")

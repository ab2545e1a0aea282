"""Headless Chromium driven over the DevTools protocol: log in with a token cookie, open pages, screenshot them.

The Airflow UI keeps its JWT in the cookie `_token`; setting it through `Network.setCookie` skips the login form.
Only Debian's `chromium` and the `websockets` package (an Airflow dependency) are needed: no chromedriver.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from airflow_stack import free_port

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1500,950",
)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one page; `close()` ends the process."""

    def __init__(self, executable: str) -> None:
        from websockets.sync.client import connect

        self.profile = Path(tempfile.mkdtemp(prefix="cb-chromium-"))
        self.port = free_port()
        self.proc = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--remote-debugging-port={self.port}", f"--user-data-dir={self.profile}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self._exit = contextlib.ExitStack()
        self.ws = self._exit.enter_context(connect(self._page_socket(), max_size=64 * 2**20, open_timeout=30))
        self._ids = itertools.count(1)
        self.call("Page.enable")
        self.call("Network.enable")

    def _page_socket(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=5) as response:
                    pages = [t for t in json.loads(response.read()) if t.get("type") == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"chromium's DevTools endpoint on port {self.port} did not come up")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=60))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def login(self, base_url: str, token: str) -> None:
        self.call("Network.setCookie", name="_token", value=token, url=base_url + "/")

    def open(self, url: str, wait_for_text: tuple[str, ...] = (), timeout: float = 45.0) -> str:
        """Navigate and wait until the page's text holds every string; returns the text."""
        self.call("Page.navigate", url=url)
        return self.wait_for_text(wait_for_text, timeout)

    def wait_for_text(self, needles: tuple[str, ...], timeout: float = 45.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.evaluate("document.body ? document.body.innerText : ''") or ""
            if text and all(n in text for n in needles):
                return str(text)
            time.sleep(0.5)
        missing = [n for n in needles if n not in text]
        raise AssertionError(f"page never showed {missing}; its text:\n{text[:3000]}")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def dom(self) -> str:
        return str(self.evaluate("document.documentElement.outerHTML"))

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def click_button(self, label: str, selector: str = "button") -> bool:
        script = (
            f"(() => {{ const b = [...document.querySelectorAll({json.dumps(selector)})]"
            f".find(e => e.innerText.trim() === {json.dumps(label)});"
            " if (b) { b.click(); return true; } return false; })()"
        )
        return bool(self.evaluate(script))

    def close(self) -> None:
        try:
            self._exit.close()
        finally:
            # The whole process group: renderers and the GPU process outlive a terminated browser process.
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
            shutil.rmtree(self.profile, ignore_errors=True)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)

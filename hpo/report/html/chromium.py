"""Headless Chromium, offline, driven over the DevTools protocol on a pipe.

`--png` renders each plot with the browser a user would open the report in, and the tests use
the same session to check the page: that every plot drew and the console shows no error.
Chromium reads DevTools commands on fd 3 and answers on fd 4 (`--remote-debugging-pipe`),
NUL-separated JSON, so no websocket client or driver package is needed. It starts with no
network at all (every host resolves to nothing, a dead proxy), so a page that tried to fetch
plotly.js from a CDN would fail to draw and log an error.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from hpo.errors import HpoError

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--remote-debugging-pipe",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--no-first-run",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    "--enable-unsafe-swiftshader",  # WebGL in software (parallel coordinates need WebGL)
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    explicit = os.environ.get("HPO_CHROMIUM")
    if explicit:
        return explicit
    return next((path for path in map(shutil.which, NAMES) if path), None)


class Chromium:
    """One headless browser process; `open(url)` gives a page to inspect or photograph."""

    def __init__(self, *, timeout_s: float = 120.0, window: tuple[int, int] = (1200, 900)):
        executable = find_chromium()
        if executable is None:
            raise HpoError(
                "no Chromium found (needed to render PNGs): install it, e.g. "
                "`apt-get install chromium`, or set HPO_CHROMIUM to its path"
            )
        self.timeout_s = timeout_s
        self._profile = tempfile.mkdtemp(prefix="hpo-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Chromium's ends move above fd 9 first, so that putting them on 3 and 4 clobbers neither.
        to_browser_r, from_browser_w = _above_9(to_browser_r), _above_9(from_browser_w)
        flags = [
            *OFFLINE_FLAGS,
            f"--user-data-dir={self._profile}",
            f"--window-size={window[0]},{window[1]}",
        ]
        self._log = open(os.path.join(self._profile, "chromium.log"), "wb")  # noqa: SIM115
        self._process = subprocess.Popen(
            [executable, *flags, "about:blank"],
            # In the child, Chromium's pipe ends become fds 3 and 4 (the only fds it inherits:
            # Python opens every other one close-on-exec).
            preexec_fn=lambda: (os.dup2(to_browser_r, 3), os.dup2(from_browser_w, 4)),
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._log.close()
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self.call("Browser.close")
            except (HpoError, OSError):
                pass
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer; events that arrive meanwhile are kept."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise HpoError(f"Chromium: {method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(left, 0))
            if not ready:
                raise HpoError(f"Chromium did not answer within {self.timeout_s:.0f} s")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise HpoError(f"Chromium exited unexpectedly: {self._log_tail()}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _log_tail(self) -> str:
        try:
            lines = Path(self._profile, "chromium.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " / ".join(lines[-5:]) or "(empty log)"

    def open(self, url: str) -> Page:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        page = Page(self, session)
        for domain in ("Runtime", "Page", "Log"):
            self.call(f"{domain}.enable", session)
        self.call("Page.navigate", session, url=url)
        page.wait_for("document.readyState === 'complete'")
        return page


def _above_9(fd: int) -> int:
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Page:
    def __init__(self, browser: Chromium, session: str):
        self.browser = browser
        self.session = session

    def evaluate(self, expression: str) -> Any:
        result = self.browser.call(
            "Runtime.evaluate", self.session, expression=expression, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise HpoError(f"Chromium: {expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float | None = None) -> Any:
        """Poll `expression` until it is truthy; returns its value."""
        deadline = time.monotonic() + (timeout_s or self.browser.timeout_s)
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise HpoError(f"Chromium: still false after waiting: {expression}")
            time.sleep(0.2)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors (failed loads) so far."""
        found = []
        for event in self.browser.events:
            if event.get("sessionId") != self.session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append(details.get("exception", {}).get("description") or details.get("text"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(
                    " ".join(
                        str(a.get("value", a.get("description"))) for a in params.get("args", [])
                    )
                )
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(params["entry"].get("text", ""))
        return found

    def screenshot(self, path: Path, clip: dict[str, float] | None = None) -> Path:
        """A PNG of the whole page, or of `clip` ({x, y, width, height} in page pixels)."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": True}
        if clip is not None:
            params["clip"] = {**clip, "scale": 1}
        else:
            size = self.evaluate(
                "({width: document.documentElement.scrollWidth,"
                " height: document.documentElement.scrollHeight})"
            )
            params["clip"] = {"x": 0, "y": 0, **size, "scale": 1}
        data = self.browser.call("Page.captureScreenshot", self.session, **params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def element_box(self, element_id: str) -> dict[str, float]:
        return self.evaluate(
            f"(() => {{ const r = document.getElementById({json.dumps(element_id)})"
            ".getBoundingClientRect();"
            " return {x: r.left + window.scrollX, y: r.top + window.scrollY,"
            " width: r.width, height: r.height}; })()"
        )

"""A headless Chromium driven over the Chrome DevTools Protocol, and a local web server.

Used by ``tests/test_book.py`` to open the built book the way a reader does. Nothing is
downloaded: the browser is the system's Chromium (Debian: ``apt-get install chromium``) and the
protocol client is ``websocket-client``. The browser is started with the flags that keep it off
the network (no background requests, component updates or sync), so every request a page makes
is one the page itself asked for, and the tests can check that they all stay on localhost.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import websocket

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HOW_TO_ENABLE = (
    "headless Chromium is not installed, so the built book is not checked in a browser; "
    "install it with `apt-get install chromium` (Debian/Ubuntu) or set RESLIB_CHROMIUM to a "
    "Chromium/Chrome binary"
)
# Keep Chromium off the network and out of the user's profile.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # root in containers and CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-dev-shm-usage",  # small /dev/shm in containers
    "--mute-audio",
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    """``$RESLIB_CHROMIUM``, else the first Chromium or Chrome on ``PATH``; None if none."""
    explicit = os.environ.get("RESLIB_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else shutil.which(explicit)
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    return None


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # one line per request would drown pytest's output


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # The browser drops connections it no longer needs (e.g. when a page is left while a
        # font still loads); a reset socket is not a failure of the book. Anything else is
        # reported as usual.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free localhost port in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class PageLog:
    """What one page did while it loaded: errors, requests and failed loads."""

    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    requests: list[str] = field(default_factory=list)  # every URL the page requested
    failed: list[str] = field(default_factory=list)  # "url: reason" for requests that failed


class Chromium:
    """One headless Chromium with one tab, controlled over the DevTools protocol.

    >>> with Chromium() as browser:
    ...     log = browser.goto("http://127.0.0.1:8000/index.html")
    ...     title = browser.evaluate("document.title")
    """

    def __init__(self, binary: str | None = None, *, width: int = 1280, height: int = 900) -> None:
        binary = binary or find_chromium()
        if binary is None:
            raise FileNotFoundError(HOW_TO_ENABLE)
        self._profile = tempfile.TemporaryDirectory(prefix="reslib-chromium-")
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [
                binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self._profile.name}",  # fresh profile: no history, no cache
                "--remote-debugging-port=0",  # Chromium picks a free port and writes it down
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        self.width, self.height = width, height
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []
        try:
            self._ws = websocket.create_connection(
                self._devtools_url(), timeout=60, suppress_origin=True
            )
            target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            self._session = self.send(
                "Target.attachToTarget", {"targetId": target, "flatten": True}
            )["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.send(f"{domain}.enable", session=True)
            self.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=True,
            )
        except BaseException:
            self.close()
            raise

    def _devtools_url(self, timeout: float = 30.0) -> str:
        # Chromium writes "<port>\n<path>" to DevToolsActivePort once it listens.
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._stderr.seek(0)
                tail = self._stderr.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"Chromium exited with code {self._proc.returncode}:\n{tail}")
            lines = port_file.read_text().split() if port_file.is_file() else []
            if len(lines) == 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.05)
        raise TimeoutError(f"Chromium did not open its DevTools port within {timeout:.0f} s")

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        ws = getattr(self, "_ws", None)
        if ws is not None:
            try:
                ws.send(json.dumps({"id": next(self._ids), "method": "Browser.close"}))
            except (OSError, websocket.WebSocketException):
                pass
            ws.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stderr.close()
        self._profile.cleanup()

    # -- the protocol ----------------------------------------------------------------------

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = False
    ) -> dict[str, Any]:
        """Send one command and wait for its result; events that arrive meanwhile are kept."""
        msg_id = next(self._ids)
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        self._ws.send(json.dumps(message))
        while True:
            reply = json.loads(self._ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def _pump(self, seconds: float) -> None:
        """Collect the events that arrive within ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._ws.settimeout(left)
            try:
                message = json.loads(self._ws.recv())
            except websocket.WebSocketTimeoutException:
                break
            finally:
                self._ws.settimeout(60)
            if "method" in message:
                self._events.append(message)

    def evaluate(self, expression: str, *, await_promise: bool = False) -> Any:
        """The JSON value of a JavaScript expression in the page; raises on a JS exception."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": await_promise},
            session=True,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise RuntimeError(f"JavaScript error in {expression[:80]!r}: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float = 20.0) -> Any:
        """Poll a JavaScript expression until it is truthy; returns its value.

        Errors while polling (a page still navigating has no context to evaluate in) count as
        "not yet"; the last one is reported if the expression never becomes truthy.
        """
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            try:
                value = self.evaluate(expression)
            except RuntimeError as err:
                value, last_error = None, err
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"timed out after {timeout:.0f} s waiting for {expression!r}"
                    + (f" (last error: {last_error})" if last_error else "")
                )
            self._pump(0.1)

    def goto(self, url: str, *, timeout: float = 30.0, settle: float = 0.5) -> PageLog:
        """Load ``url``, wait for its load event, and return what happened while it loaded.

        ``settle`` seconds after the load event are still recorded (deferred scripts, fonts).
        """
        self._events.clear()
        result = self.send("Page.navigate", {"url": url}, session=True)
        if result.get("errorText"):
            raise RuntimeError(f"could not open {url}: {result['errorText']}")
        deadline = time.monotonic() + timeout
        while not any(e["method"] == "Page.loadEventFired" for e in self._events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading within {timeout:.0f} s")
            self._pump(0.1)
        self._pump(settle)
        return self.log()

    def log(self) -> PageLog:
        """Errors, requests and failed loads recorded since the last :meth:`goto`."""
        log = PageLog()
        urls: dict[str, str] = {}
        for event in self._events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                log.errors.append(
                    "uncaught exception: "
                    + (details.get("exception", {}).get("description") or details.get("text", ""))
                )
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                args = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
                log.errors.append(f"console.{params['type']}: " + " ".join(args))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                log.errors.append(f"{entry['source']}: {entry['text']} {entry.get('url', '')}")
            elif method == "Network.requestWillBeSent":
                urls[params["requestId"]] = params["request"]["url"]
                log.requests.append(params["request"]["url"])
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                url = urls.get(params["requestId"], "?")
                log.failed.append(f"{url}: {params['errorText']}")
            elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
                response = params["response"]
                log.failed.append(f"{response['url']}: HTTP {response['status']}")
        return log

    def screenshot(self, path: Path, *, full_page: bool = True, max_height: int = 16000) -> Path:
        """Save a PNG of the page (the whole page, up to ``max_height`` pixels, by default).

        For the whole page the window is made as tall as the page (a clip beyond the viewport
        would lay the page out at another size), then restored.
        """
        import base64

        if full_page:
            size = self.send("Page.getLayoutMetrics", session=True)["cssContentSize"]
            height = int(min(size["height"], max_height))
            self.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": self.width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=True,
            )
            self._pump(0.3)  # let the page re-lay itself out
        try:
            data = self.send("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        finally:
            if full_page:
                self.send(
                    "Emulation.setDeviceMetricsOverride",
                    {
                        "width": self.width,
                        "height": self.height,
                        "deviceScaleFactor": 1,
                        "mobile": False,
                    },
                    session=True,
                )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

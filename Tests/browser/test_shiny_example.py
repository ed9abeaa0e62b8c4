"""The Shiny example (examples/shiny/app.py) in a real browser.

Each test starts the app on a loopback port with its own commhost, manifest
and a private copy of the Widgets plugin (so a rebuild for the hot-reload
test never touches the repository's build output), and drives Debian's
Chromium through Playwright with real keyboard and mouse input. Run through
./test, which builds the plugin first; or, after `swift build`:

    examples/shiny/.venv/bin/python -m pytest -v Tests/browser
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable, TypeVar

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / ".build" / "debug"
APP = REPO / "examples" / "shiny" / "app.py"
MANIFEST = REPO / "examples" / "shiny" / "commhost.json"
PLUGIN = "libWidgetsPlugin.so"
SCREENSHOT = REPO / "docs" / "shiny-widgets.png"
CHROMIUM = "/usr/bin/chromium"

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 15) -> T:
    """Polls `probe` until it returns something truthy; fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class RunningApp:
    """examples/shiny/app.py serving on a free loopback port, with its own commhost."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.plugins = folder / "plugins"
        self.plugins.mkdir()
        shutil.copy2(BUILD / PLUGIN, self.plugins / PLUGIN)
        manifest = json.loads(MANIFEST.read_text())
        manifest["plugin_paths"] = [str(self.plugins)]
        self.manifest = folder / "commhost.json"
        self.manifest.write_text(json.dumps(manifest, indent=2))
        self.socket = folder / "commhost.sock"
        self.host_log_path = folder / "commhost.log"
        self.app_log_path = folder / "app.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = dict(os.environ, COMMHOST_BIN=str(BUILD / "commhost"), COMMHOST_MANIFEST=str(self.manifest),
                   COMMHOST_SOCKET=str(self.socket), COMMHOST_LOG=str(self.host_log_path),
                   COMMHOST_WATCH="1", HOST="127.0.0.1", PORT=str(self.port), PYTHONUNBUFFERED="1")
        self._app_log = open(self.app_log_path, "wb")
        self.process = subprocess.Popen([sys.executable, str(APP)], env=env, stdin=subprocess.DEVNULL,
                                        stdout=self._app_log, stderr=subprocess.STDOUT)
        wait_for(f"the app to answer on {self.url} (its log: {self.app_log_path})", self._answers, timeout=30)

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"the app exited with {self.process.returncode}:\n{self.app_log()}")
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def app_log(self) -> str:
        return self.app_log_path.read_text(errors="replace")

    def host_log(self) -> list[dict]:
        """The host's log: one JSON object per line (a line that is not JSON fails the test)."""
        lines = self.host_log_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def host_log_has(self, **fields: object) -> list[dict]:
        return [entry for entry in self.host_log() if all(entry.get(k) == v for k, v in fields.items())]

    def stats(self) -> dict:
        """`commhost stats --json`: the host's counters (its own connection is a session too)."""
        result = subprocess.run([str(BUILD / "commhost"), "stats", "--socket", str(self.socket), "--json"],
                                capture_output=True, text=True, timeout=20)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def stop(self) -> int:
        """SIGTERM, as a person's Ctrl-C would: the app stops its commhost on the way out."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._app_log.close()
        return self.process.returncode


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WidgetPage:
    """One browser page showing the app, with the console errors it logged."""

    def __init__(self, browser: Browser, app: RunningApp) -> None:
        self.app = app
        self.context = browser.new_context(viewport={"width": 900, "height": 600})
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.open()

    def _console(self, message: ConsoleMessage) -> None:
        # Shiny serves no favicon; Chromium logs its 404 as an error.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            self.errors.append(f"console error: {message.text} ({message.location})")

    def open(self) -> None:
        self.page.goto(self.app.url)
        self.wait_until_shown()

    def reload(self) -> None:
        self.page.reload()
        self.wait_until_shown()

    def wait_until_shown(self) -> None:
        expect(self.page.locator(".ui-slider-handle")).to_be_visible(timeout=20_000)
        expect(self.label).to_be_visible()
        expect(self.page.locator(".widget-image img, img.widget-image").first).to_be_visible()
        # Catch every comm_send value the browser sets, to learn comm ids as a client would.
        self.page.evaluate("""() => {
            if (window.__sent) return;
            window.__sent = [];
            const original = Shiny.setInputValue;
            Shiny.setInputValue = function (name, value, options) {
                if (name === "shinywidgets_comm_send") window.__sent.push(value);
                return original.apply(this, arguments);
            };
        }""")

    @property
    def label(self):
        return self.page.locator(".widget-label").filter(has_text=re.compile(r"^value\s*[:=]"))

    @property
    def readout(self):
        return self.page.locator(".widget-readout")

    def press_right(self, times: int = 1) -> None:
        handle = self.page.locator(".ui-slider-handle")
        handle.focus()
        for _ in range(times):
            self.page.keyboard.press("ArrowRight")

    def click_reset(self) -> None:
        self.page.get_by_role("button", name="Reset").click()

    def image_bytes(self) -> bytes:
        encoded = self.page.evaluate("""async () => {
            const img = document.querySelector(".widget-image img, img.widget-image");
            const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
            let text = "";
            for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
            return btoa(text);
        }""")
        return base64.b64decode(encoded)

    def sent(self) -> list[dict]:
        """The shinywidgets_comm_send values this page set since it was shown, parsed."""
        return [json.loads(text) for text in self.page.evaluate("() => window.__sent")]

    def send_raw(self, value: str) -> None:
        self.page.evaluate("(value) => Shiny.setInputValue('shinywidgets_comm_send', value, {priority: 'event'})", value)

    def assert_no_console_errors(self) -> None:
        assert self.errors == [], "\n".join(self.errors)

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (./test does this as root)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def app(tmp_path: Path):
    if not (BUILD / PLUGIN).exists() or not (BUILD / "commhost").exists():
        pytest.fail(f"{BUILD / PLUGIN} or commhost is missing: run swift build first")
    running = RunningApp(tmp_path)
    yield running
    status = running.stop()
    # uvicorn shuts down cleanly on SIGTERM, then re-raises it to exit.
    assert status in (0, -signal.SIGTERM), f"the app exited with {status}:\n{running.app_log()}"
    assert "Application shutdown complete" in running.app_log()
    assert "commhost exited with status 0" in running.app_log()
    assert running.host_log_has(msg="stopped"), "commhost stopped with the app"
    assert not running.socket.exists(), "commhost removed its socket"


@pytest.fixture
def pages(browser: Browser, app: RunningApp):
    opened: list[WidgetPage] = []

    def open_page() -> WidgetPage:
        opened.append(WidgetPage(browser, app))
        return opened[-1]

    yield open_page
    for page in opened:
        page.close()


def test_moving_the_slider_updates_label_and_image_and_reset_returns_to_zero(app, pages):
    page = pages()
    expect(page.label).to_have_text("value: 42")
    expect(page.readout).to_have_text("42")
    before = page.image_bytes()
    assert before.startswith(b"\x89PNG\r\n\x1a\n"), "the image is a PNG"

    page.press_right()
    expect(page.label).to_have_text("value: 43")
    expect(page.readout).to_have_text("43")
    after = wait_for("the image to change", lambda: (b := page.image_bytes()) != before and b)
    assert after.startswith(b"\x89PNG\r\n\x1a\n")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    shown = page.page.locator(".shiny-ipywidget-output").bounding_box()
    page.page.screenshot(path=str(SCREENSHOT), clip={"x": 0, "y": 0, "width": 900, "height": shown["y"] + shown["height"] + 16})

    page.click_reset()
    expect(page.label).to_have_text("value: 0")
    expect(page.readout).to_have_text("0")
    page.assert_no_console_errors()


def test_two_pages_open_at_once_are_independent_sessions(app, pages):
    first, second = pages(), pages()
    first.press_right(3)
    expect(first.label).to_have_text("value: 45")
    second.press_right()
    expect(second.label).to_have_text("value: 43")
    expect(first.label).to_have_text("value: 45")
    second.click_reset()
    expect(second.label).to_have_text("value: 0")
    expect(first.label).to_have_text("value: 45")
    expect(first.readout).to_have_text("45")

    started = app.host_log_has(msg="session started", peer_pid=app.process.pid)
    assert len(started) == 2, f"one commhost session per Shiny session: {started}"
    first.assert_no_console_errors()
    second.assert_no_console_errors()


def test_reloading_a_page_closes_the_old_sessions_comms(app, pages):
    page = pages()
    page.press_right()
    expect(page.label).to_have_text("value: 43")
    [old] = app.host_log_has(msg="session started", peer_pid=app.process.pid)
    per_session = app.stats()["targets"]
    one_page = sum(t["opened"] for t in per_session.values()) // 2  # this page's session and the stats one

    page.reload()
    expect(page.label).to_have_text("value: 42")  # a new session, with its own widgets
    wait_for("the old session to end", lambda: app.host_log_has(msg="session ended", session=old["session"]))
    stats = app.stats()
    open_now = sum(stats["open_comms"].values())
    assert open_now == 2 * one_page, f"only the new page's comms (and the asking session's) are open: {stats}"
    assert stats["sessions"] == 2, stats
    page.press_right()
    expect(page.label).to_have_text("value: 43")
    page.assert_no_console_errors()


def test_bad_input_from_the_browser_is_logged_and_the_page_keeps_working(app, pages):
    page = pages()
    page.press_right()
    expect(page.label).to_have_text("value: 43")
    slider_id = page.sent()[-1]["content"]["comm_id"]

    page.send_raw("not json")
    wait_for("the app to log the host's error", lambda: "rejected a frame from the browser" in app.app_log())
    wait_for("the host to log bad input", lambda: app.host_log_has(msg="bad input; answered with an error frame", level="warning"))

    unknown = {"content": {"comm_id": "no-such-comm", "data": {"method": "update", "state": {"value": 1}}},
               "metadata": {}, "buffers": [], "header": {}}
    page.send_raw(json.dumps(unknown))
    wait_for("the app to log the unknown comm", lambda: "'no-such-comm', which this session does not have" in app.app_log())

    malformed = {"content": {"comm_id": slider_id, "data": {"method": "update", "state": {"value": "forty"}}},
                 "metadata": {}, "buffers": [], "header": {}}
    page.send_raw(json.dumps(malformed))
    wait_for("the host to log the handler's error", lambda: app.host_log_has(msg="handler error", comm_id=slider_id))
    wait_for("the app to log HandlerError", lambda: "HandlerError" in app.app_log())

    page.send_raw("two\nlines")
    wait_for("the app to drop a value with a line break", lambda: "not one line of text" in app.app_log())

    page.press_right()
    expect(page.label).to_have_text("value: 44")
    expect(page.readout).to_have_text("44")
    assert app.stats()["errors"].get("InvalidJSON", 0) >= 1
    page.assert_no_console_errors()


def test_a_rebuilt_plugin_is_swapped_in_while_the_page_is_open_and_keeps_the_value(app, pages):
    page = pages()
    page.press_right()
    expect(page.label).to_have_text("value: 43")

    built = app.folder / "build" / PLUGIN
    built.parent.mkdir()
    compile_widgets_plugin(built, defines=["WIDGETS_LABEL_V2"])
    staged = app.plugins / f".{PLUGIN}.new"
    shutil.copy2(built, staged)
    os.replace(staged, app.plugins / PLUGIN)  # as a linker does: a new file renamed over the old
    wait_for("commhost to reload the plugin", lambda: app.host_log_has(msg="reloaded library"), timeout=30)
    # The new code, handed the old state, shows the kept value in its format.
    expect(page.label).to_have_text("value = 43")
    expect(page.readout).to_have_text("43")

    page.press_right()
    expect(page.label).to_have_text("value = 44")
    expect(page.readout).to_have_text("44")
    assert app.stats()["reloads"] == 1
    page.assert_no_console_errors()


def compile_widgets_plugin(output: Path, defines: list[str]) -> None:
    """Plugins/Widgets compiled with swiftc against the kit objects of the debug build,
    as Tests/CommHostTests/TestSupport.swift compileSwiftPlugin does."""
    sources = sorted(str(p) for p in (REPO / "Plugins" / "Widgets").rglob("*.swift"))
    kit = sorted(str(p) for p in (BUILD / "CommPluginKit.build").glob("*.swift.o"))
    assert sources and kit, "Plugins/Widgets sources and the debug build's CommPluginKit objects"
    command = ["swiftc", "-emit-library", "-module-name", "Widgets", "-swift-version", "6",
               "-I", str(BUILD / "Modules"),
               "-Xcc", f"-fmodule-map-file={BUILD / 'CommPluginAPI.build' / 'module.modulemap'}",
               "-o", str(output), *sources, *kit]
    for define in defines:
        command += ["-D", define]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"swiftc failed:\n{result.stdout}{result.stderr}"

"""A Shiny app whose widgets live in commhost, not in Python.

One `commhost serve --socket PATH --dialect shinywidgets` runs beside the app.
Every Shiny session gets its own connection to it (a commhost session), and
this file only relays: what commhost writes is already the custom message
shinywidgets' JavaScript expects, and what the browser sets as the
`shinywidgets_comm_send` input goes to commhost unchanged. The widgets (a VBox
with a slider, a label, an image and a button) are opened by the Widgets
plugin when the session starts; no Python widget is ever constructed.

Run it with `examples/shiny/run` (README.md, "The Shiny example"), or, with
the packages of requirements.txt installed and `swift build` done,
`python examples/shiny/app.py`. Settings, all optional, from the environment:

    COMMHOST_BIN        the commhost executable (default: .build/debug/commhost)
    COMMHOST_MANIFEST   the manifest (default: commhost.json beside this file)
    COMMHOST_SOCKET     the socket path (default: a new private temp folder)
    COMMHOST_LOG        a file for the host's log (default: this app's stderr)
    COMMHOST_LOG_LEVEL  the host's --log-level (default: debug, see HostProcess)
    COMMHOST_WATCH      "0" turns hot reload (--watch) off
    HOST, PORT          where `python app.py` serves (default 127.0.0.1:8000)
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shiny import App, Inputs, Outputs, Session, reactive, ui
from shiny.render.renderer import Jsonifiable, Renderer
from shinywidgets import output_widget

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

log = logging.getLogger("commhost.shiny")

#: What shinywidgets' JavaScript handles (Shiny.addCustomMessageHandler).
CUSTOM_MESSAGES = ("shinywidgets_comm_open", "shinywidgets_comm_msg", "shinywidgets_comm_close")

#: How long a session waits for the plugin's root widget before showing an error.
ROOT_TIMEOUT_S = 15


class HostProcess:
    """The one commhost process this app talks to; stopped when the app stops."""

    def __init__(self) -> None:
        self.binary = os.environ.get("COMMHOST_BIN", str(REPO / ".build/debug/commhost"))
        self.manifest = os.environ.get("COMMHOST_MANIFEST", str(HERE / "commhost.json"))
        self._private_dir = None
        if "COMMHOST_SOCKET" in os.environ:
            self.socket = os.environ["COMMHOST_SOCKET"]
        else:
            self._private_dir = tempfile.mkdtemp(prefix="commhost-shiny-")
            self.socket = os.path.join(self._private_dir, "commhost.sock")
        if not os.access(self.binary, os.X_OK):
            sys.exit(f"commhost not found at {self.binary}: run `swift build` first, or set COMMHOST_BIN")
        # The host logs input it rejects (not JSON, a bad frame) at debug level
        # only; debug adds nothing per message, so it is the default here.
        command = [self.binary, "serve", "--socket", self.socket, "--dialect", "shinywidgets",
                   "--manifest", self.manifest, "--log-level", os.environ.get("COMMHOST_LOG_LEVEL", "debug")]
        if os.environ.get("COMMHOST_WATCH", "1") != "0":
            command.append("--watch")
        log_path = os.environ.get("COMMHOST_LOG")
        self._log_file = open(log_path, "ab") if log_path else None
        log.info("starting %s", " ".join(command))
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=self._log_file,
                                        preexec_fn=_die_with_parent)
        self._wait_for_socket()
        atexit.register(self.stop)

    def _wait_for_socket(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"commhost exited with status {self.process.returncode} before listening "
                         f"(its log: {os.environ.get('COMMHOST_LOG', 'above')})")
            try:
                if stat.S_ISSOCK(os.stat(self.socket).st_mode):
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        self.stop()
        sys.exit(f"commhost did not create {self.socket} within {timeout} s")

    def stop(self) -> None:
        """SIGTERM: the host closes every comm (cause shutdown), runs deinit and exits 0."""
        if self.process.poll() is None:
            log.info("stopping commhost (pid %d)", self.process.pid)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.error("commhost did not stop within 10 s; killing it")
                self.process.kill()
                self.process.wait()
            log.info("commhost exited with status %d", self.process.returncode)
        if self._log_file:
            self._log_file.close()
            self._log_file = None
        if self._private_dir:
            shutil.rmtree(self._private_dir, ignore_errors=True)
            self._private_dir = None


def _die_with_parent() -> None:
    """In the child: SIGTERM when the app's process dies, even by SIGKILL (Linux prctl)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Relay:
    """One Shiny session's connection to commhost: frames go through unchanged.

    A single task reads the socket and awaits each `send_custom_message` in
    turn, so frames reach the browser in the order commhost wrote them, and
    a widget's comm_open is always sent before the output value that shows
    it (`root_model_id` resolves only after the root's open was sent).
    """

    def __init__(self, session: Session, socket_path: str) -> None:
        self.session = session
        self.socket_path = socket_path
        self.name = f"session {session.id[:8]}"
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._root: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._open_comms: set[str] = set()
        self._closing = False
        self._task = asyncio.create_task(self._run())

    async def root_model_id(self) -> str:
        """The comm id of the widget the plugin marked as its root."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._root), ROOT_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise RuntimeError(f"commhost opened no root widget within {ROOT_TIMEOUT_S} s: "
                               "is libWidgetsPlugin.so built and bound in the manifest? See the host's log.")

    async def _run(self) -> None:
        try:
            reader = await self._connect()
        except OSError as error:
            self._fail(f"cannot connect to commhost at {self.socket_path}: {error}")
            return
        finally:
            self._connected.set()
        log.info("%s: connected to commhost", self.name)
        try:
            while line := await reader.readline():
                await self._deliver(line)
        except Exception as error:  # a frame past the line limit, or the session went away mid-send
            if not self._closing:
                self._fail(f"relay stopped: {type(error).__name__}: {error}")
            return
        if not self._closing:
            self._fail("commhost closed the connection")

    def _fail(self, reason: str) -> None:
        log.error("%s: %s", self.name, reason)
        if not self._root.done():
            self._root.set_exception(RuntimeError(reason))

    async def _connect(self) -> asyncio.StreamReader:
        # A generous line limit: frames carry base64 images (the host's own
        # bound is max_frame_bytes, 64 MiB by default, which escaping doubles).
        for attempt in range(40):
            try:
                reader, self._writer = await asyncio.open_unix_connection(self.socket_path, limit=1 << 28)
                return reader
            except ConnectionRefusedError:  # bound but not yet listening
                if attempt == 39:
                    raise
                await asyncio.sleep(0.05)
        raise AssertionError("unreachable")

    async def _deliver(self, line: bytes) -> None:
        try:
            frame = json.loads(line)
        except ValueError:
            log.error("%s: commhost wrote a line that is not JSON: %.200r", self.name, line)
            return
        kind = frame.get("type")
        if kind in CUSTOM_MESSAGES and isinstance(frame.get("message"), str):
            await self._forward(kind, frame["message"])
        elif frame.get("msg_type") == "error":
            content = frame.get("content", {})
            log.error("%s: commhost rejected a frame from the browser: %s: %s", self.name,
                      content.get("ename"), content.get("evalue"))
        else:
            log.warning("%s: ignoring a frame from commhost: %.200s", self.name, line.decode(errors="replace"))

    async def _forward(self, kind: str, text: str) -> None:
        root = None
        if kind != "shinywidgets_comm_msg":
            message = json.loads(text)
            comm_id = message["content"]["comm_id"]
            if kind == "shinywidgets_comm_open":
                self._open_comms.add(comm_id)
                root = comm_id if is_root(message) else None
            elif comm_id in self._open_comms:
                self._open_comms.discard(comm_id)
            else:
                # commhost answers a message for a comm it does not have with
                # comm_close; the browser never had that comm either, and
                # would log an error for a close it cannot match.
                log.error("%s: the browser sent a message for comm %r, which this session does not have "
                          "(commhost answered comm_close; not forwarded)", self.name, comm_id)
                return
        await self.session.send_custom_message(kind, text)  # type: ignore[arg-type]  # JSON text, as shinywidgets sends
        if root is not None and not self._root.done():
            log.info("%s: root widget is %s", self.name, root)
            self._root.set_result(root)

    async def send(self, value: object) -> None:
        """One `shinywidgets_comm_send` value from the browser: one line to commhost."""
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            log.error("%s: dropping a shinywidgets_comm_send value that is not one line of text: %.200r",
                      self.name, value)
            return
        await self._connected.wait()
        if self._writer is None or self._writer.is_closing():
            log.error("%s: not connected to commhost; dropping a shinywidgets_comm_send value", self.name)
            return
        try:
            self._writer.write(value.encode() + b"\n")
            await self._writer.drain()
        except OSError as error:
            log.error("%s: writing to commhost failed: %s", self.name, error)

    async def close(self) -> None:
        """End of the Shiny session: commhost closes this session's comms and ends it."""
        self._closing = True
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        self._task.cancel()
        log.info("%s: ended; connection to commhost closed", self.name)


def is_root(open_message: dict) -> bool:
    """Whether a comm_open is the widget to display: the Widgets plugin opens its root VBox last,
    with `"commhost_root": true` in the metadata (Plugins/Widgets/WidgetsApp.swift, rootMarker)."""
    return open_message.get("metadata", {}).get("commhost_root") is True


class host_widget(Renderer[str]):
    """Displays the widget whose comm id the function returns (the value shinywidgets' output binding reads)."""

    def auto_output_ui(self) -> ui.Tag:
        return output_widget(self.output_id, fill=False)

    async def transform(self, value: str) -> Jsonifiable:
        return {"model_id": value, "fill": False, "widget_pkg": ""}


app_ui = ui.page_fixed(
    ui.h2("Widgets served by commhost"),
    ui.p("The slider, label, image and button below are ipywidgets models that a Swift plugin "
         "opens in commhost; this Shiny app only relays their messages."),
    output_widget("widgets", fill=False),
    title="commhost widgets",
    class_="py-3",
)


def server(input: Inputs, output: Outputs, session: Session) -> None:
    relay = Relay(session, host.socket)
    session.on_ended(relay.close)

    @host_widget
    async def widgets() -> str:
        return await relay.root_model_id()

    @reactive.effect
    @reactive.event(input.shinywidgets_comm_send)
    async def _to_host() -> None:
        await relay.send(input.shinywidgets_comm_send())


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
host = HostProcess()
app = App(app_ui, server)
app.on_shutdown(host.stop)

if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8000")))

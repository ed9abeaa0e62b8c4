"""The Python baseline for commhost-bench: the `comm` package's CommManager
doing the work commhost does for the same frames.

Each inbound line is handled as a kernel handles a comm message: json.loads
the frame, dispatch on msg_type to CommManager.comm_open / comm_msg /
comm_close, which finds the comm by id and calls its callback. The echo
target's callback sends the same data, metadata and buffers back with
BaseComm.send, whose publish_msg builds the reply envelope (the fields
commhost writes: msg_type, header {msg_id, msg_type}, parent_header,
metadata, content {comm_id, data}, buffers in base64) and json.dumps it the
way jupyter_client's Session packs messages. Reply bytes go into memory.

Modes (each prints one JSON object on stdout):
  dispatch FRAMES --warmup N --rounds R   messages/s per round over the lines of FRAMES
  base64 --size BYTES --iterations N --warmup N --rounds R   MB/s of b64decode+b64encode
  (dispatch and base64 with --interactive instead run one round per "round" line
  on stdin and answer each with {"rate": X}, so the caller can interleave its own
  rounds with these and both see the same machine load)
  memory --comms N                        RSS at idle, then bytes per open comm
  serve                                   answer frames on stdin/stdout, one line each, flushed
"""

import base64
import json
import sys
import time
import types

# BaseComm.handle_msg imports IPython.get_ipython to fire pre/post_execute
# events when it runs inside an IPython shell. Outside one (as here) that is
# a function returning None; this stand-in gives exactly that, without
# installing IPython into the venv.
if "IPython" not in sys.modules:
    _ipython = types.ModuleType("IPython")
    _ipython.get_ipython = lambda: None
    sys.modules["IPython"] = _ipython

import comm  # noqa: E402
from comm.base_comm import BaseComm, CommManager  # noqa: E402


def pack(obj):
    """jupyter_client.session's default packer."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf8", errors="surrogateescape")


class Outbox:
    """Where replies go: a list of encoded frames, and the parent header of
    the message being handled (as a kernel's Session tracks it)."""

    def __init__(self):
        self.frames = []
        self.parent = {}
        self.counter = 0

    def next_id(self):
        self.counter += 1
        return "peer-%d" % self.counter


OUTBOX = Outbox()


class EchoComm(BaseComm):
    """A comm whose publish_msg writes a Jupyter message like commhost's."""

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        data = {} if data is None else data
        metadata = {} if metadata is None else metadata
        content = dict(comm_id=self.comm_id, data=data, **keys)
        msg = {
            "msg_type": msg_type,
            "header": {"msg_id": OUTBOX.next_id(), "msg_type": msg_type},
            "parent_header": OUTBOX.parent,
            "metadata": metadata,
            "content": content,
            "buffers": [base64.b64encode(b).decode("ascii") for b in (buffers or [])],
        }
        OUTBOX.frames.append(pack(msg) + b"\n")


MANAGER = CommManager()
comm.create_comm = EchoComm
comm.get_comm_manager = lambda: MANAGER


def echo_target(the_comm, open_msg):
    def on_msg(msg):
        the_comm.send(data=msg["content"]["data"], metadata=msg.get("metadata"), buffers=msg.get("buffers"))

    the_comm.on_msg(on_msg)


MANAGER.register_target("commhost.echo", echo_target)
MANAGER.register_target("bench.echo", echo_target)

HANDLERS = {
    "comm_open": MANAGER.comm_open,
    "comm_msg": MANAGER.comm_msg,
    "comm_close": MANAGER.comm_close,
}


def handle_line(line):
    """One frame, as a kernel's shell handler takes it."""
    msg = json.loads(line)
    msg_type = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
    msg.setdefault("metadata", {})
    wire_buffers = msg.get("buffers") or []
    msg["buffers"] = [base64.b64decode(b, validate=True) for b in wire_buffers]
    header = msg.get("header") or {}
    OUTBOX.parent = {"msg_id": header["msg_id"]} if "msg_id" in header else {}
    handler = HANDLERS.get(msg_type)
    if handler is not None:
        handler(None, None, msg)


def rss_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def option(args, name, default):
    if name in args:
        return int(args[args.index(name) + 1])
    return default


def run_rounds(args, one_round):
    """Runs warm-up and measured rounds of `one_round` (which returns a rate)
    and prints them, or with --interactive one round per "round" line."""
    if "--interactive" in args:
        for command in sys.stdin:
            if command.strip() != "round":
                continue
            print(json.dumps({"rate": one_round()}), flush=True)
        return
    warmup, rounds = option(args, "--warmup", 1), option(args, "--rounds", 5)
    rates = [one_round() for _ in range(warmup + rounds)][warmup:]
    print(json.dumps({"rates": rates}))


def run_dispatch(args):
    with open(args[0], "rb") as f:
        lines = f.read().splitlines()
    opens = [l for l in lines if b'"comm_open"' in l]
    messages = [l for l in lines if b'"comm_open"' not in l]
    for line in opens:
        handle_line(line)

    def one_round():
        OUTBOX.frames = []
        start = time.perf_counter_ns()
        for line in messages:
            handle_line(line)
        elapsed = time.perf_counter_ns() - start
        if len(OUTBOX.frames) != len(messages):
            raise SystemExit("expected %d replies, got %d" % (len(messages), len(OUTBOX.frames)))
        return len(messages) / (elapsed / 1e9)

    run_rounds(args, one_round)


def run_base64(args):
    size = option(args, "--size", 1 << 20)
    iterations = option(args, "--iterations", 50)
    # (i * 131 + 7) & 0xFF repeats every 256 bytes; built by repetition, 64 MiB takes no time.
    period = bytes((i * 131 + 7) & 0xFF for i in range(256))
    raw = (period * (size // 256 + 1))[:size]
    text = base64.b64encode(raw)

    def one_round():
        start = time.perf_counter_ns()
        for _ in range(iterations):
            out = base64.b64encode(base64.b64decode(text, validate=True))
        elapsed = time.perf_counter_ns() - start
        assert out == text
        return size * iterations / (elapsed / 1e9) / 1e6

    run_rounds(args, one_round)


def run_memory(args):
    count = option(args, "--comms", 100000)
    idle = rss_bytes()
    for i in range(count):
        handle_line(json.dumps({"msg_type": "comm_open", "header": {"msg_id": "o%d" % i},
                                "content": {"comm_id": "c%06d" % i, "target_name": "bench.echo", "data": {}}}))
    after = rss_bytes()
    assert len(MANAGER.comms) == count
    print(json.dumps({"idle_rss": idle, "per_comm": (after - idle) / count}))


def run_serve():
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        OUTBOX.frames = []
        handle_line(line)
        for frame in OUTBOX.frames:
            out.write(frame)
        out.flush()


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "dispatch":
        run_dispatch(args)
    elif mode == "base64":
        run_base64(args)
    elif mode == "memory":
        run_memory(args)
    elif mode == "serve":
        run_serve()
    else:
        raise SystemExit("unknown mode %r" % mode)


if __name__ == "__main__":
    main()

"""Real servers for the tests: `nxs` subprocesses on free loopback ports.

`start_nxs(["emulator", …])` runs the real command line and waits until it answers;
`start_emulator(folder, *flags)` is that for the emulator on a free port.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from ssl import SSLContext, create_default_context

ROOT = Path(__file__).resolve().parents[2]


class PortBlock:
    """Loopback ports for one test process's servers, handed out once each.

    A port from `bind(0)` comes from the kernel's ephemeral range, where every other
    test process (pytest-xdist's workers) and every outgoing connection takes theirs: a
    port closed here to be reopened by a child server may be taken in between, and the
    test then talks to someone else's server (seen in CI: a session gateway whose port
    an emulator of the other worker answered). So each process gets a block of its own
    below the ephemeral range, by its xdist worker number, and walks it in order.
    """

    SIZE = 2000
    FIRST = 12000

    def __init__(self, worker: str) -> None:
        index = int(worker.removeprefix("gw")) + 1 if worker.startswith("gw") else 0
        start = self.FIRST + index * self.SIZE
        if start + self.SIZE > _ephemeral_start():
            raise RuntimeError(f"too many test processes for the port blocks: {worker}")
        self._ports = itertools.cycle(range(start, start + self.SIZE))

    def take(self) -> int:
        """The next port of the block nobody listens on."""
        for _ in range(self.SIZE):
            port = next(self._ports)
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
        raise RuntimeError("no free port left in this test process's block")


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


PORTS = PortBlock(os.environ.get("PYTEST_XDIST_WORKER", "main"))


def free_port() -> int:
    """A loopback port of this test process's own block (see `PortBlock`)."""
    return PORTS.take()


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    url: str  # base URL, e.g. http://127.0.0.1:PORT
    port: int
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def nxs_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "nxs", *args]


def run_nxs(
    *args: str, env: Mapping[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `nxs ARGS…` (an admin command) with `env` on top of ours; never raises on failure."""
    return subprocess.run(
        nxs_command(*args),
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=30,
        check=False,
    )


def start_nxs(
    args: list[str],
    *,
    port: int,
    log_path: Path,
    env: dict[str, str] | None = None,
    scheme: str = "http",
    ready_path: str = "/healthz",
    ssl_context: SSLContext | None = None,
    timeout: float = 15.0,
    new_session: bool = False,
) -> RunningServer:
    """Start `nxs ARGS…` and wait until `ready_path` answers (any status); with
    `new_session` it leads a process group of its own (with its workers), which a test
    may SIGKILL whole (`os.killpg`) without killing itself."""
    full_env = {**os.environ, **(env or {})}
    with log_path.open("wb") as log:  # the child keeps its own handle
        process = subprocess.Popen(
            nxs_command(*args),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=ROOT,
            start_new_session=new_session,
        )
    url = f"{scheme}://127.0.0.1:{port}"
    server = RunningServer(process, url, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nxs {args[0]} exited early:\n{server.log()}")
        if _answers(url + ready_path, ssl_context):
            return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"nxs {args[0]} not ready in {timeout}s:\n{server.log()}")


def start_emulator(
    folder: Path, *flags: str, tls: Mapping[str, Path] | None = None
) -> RunningServer:
    """`nxs emulator FLAGS…` on a free port, logging to `folder`/emulator.log; over TLS
    with `tls` (the `cert`, `key` and `ca` files of the `tls_files` fixture)."""
    port = free_port()
    args = ["emulator", "--port", str(port), *flags]
    log_path = folder / "emulator.log"
    if tls is None:
        return start_nxs(args, port=port, log_path=log_path)
    args += ["--ssl-certfile", str(tls["cert"]), "--ssl-keyfile", str(tls["key"])]
    context = create_default_context(cafile=str(tls["ca"]))
    return start_nxs(args, port=port, log_path=log_path, scheme="https", ssl_context=context)


def _answers(url: str, ssl_context: SSLContext | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1, context=ssl_context):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, urllib.error.URLError):
        return False


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Poll `check` until it holds or `seconds` pass (changes reach gateways within ~1 s)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()

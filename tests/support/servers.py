"""Real servers for the tests: `nxs` subprocesses on free loopback ports.

`start_nxs(["emulator", …])` runs the real command line and waits until it answers;
`start_emulator(folder, *flags)` is that for the emulator on a free port.
"""

from __future__ import annotations

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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

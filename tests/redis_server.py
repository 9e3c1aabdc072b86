"""A real redis-server of the test's own, on 127.0.0.1 at a free port, in a temporary folder.

``RedisServer(folder).start()`` starts it (no persistence unless ``persist``:
then an append-only file in ``folder``, so streams and consumer groups survive
``restart``), ``stop()`` ends it, ``restart()`` is both on the same port;
``freeze()`` and ``thaw()`` stop and continue the process (SIGSTOP, SIGCONT):
a server that holds its connections and answers nothing.
Nothing here speaks the Redis protocol: readiness is redis-server's own log
line.  ``redis_or_skip()`` skips a test where the binary is not installed
(CI installs it: see .ci/run).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

READY = b"Ready to accept connections"


def redis_or_skip() -> str:
    path = shutil.which("redis-server")
    if path is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run installs it)")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, folder: str, port: int | None = None, persist: bool = False) -> None:
        self.binary = redis_or_skip()
        self.folder = str(folder)
        self.port = port if port is not None else free_port()
        self.persist = persist
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        assert self.process is None, "already running"
        self.starts += 1
        log = os.path.join(self.folder, f"redis-{self.starts}.log")
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]
        self.process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.folder,
             "--save", "", *persistence, "--logfile", log, "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = open(log, "rb").read() if os.path.exists(log) else b""
                self.process = None
                raise RuntimeError(f"redis-server exited at start: {output[-2000:].decode(errors='replace')}")
            if os.path.exists(log) and READY in open(log, "rb").read():
                return self
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"redis-server did not get ready in {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: redis-server closes its clients and, persisting, syncs its append-only file."""
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGCONT)  # (a frozen one would never end)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def freeze(self) -> None:
        assert self.process is not None, "not running"
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None, "not running"
        self.process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

"""Another Kraken v2 client works against ``twistd gfws-sim`` unchanged but for the URL.

python-kraken-sdk (Apache-2.0, installed from PyPI with the test extra) runs in
its own asyncio process: it subscribes, pings, is refused an unknown pair, and
its order book client verifies every book checksum with its own code.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(__file__)
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


def start_simulator(cwd):
    process = subprocess.Popen([TWISTD, "-n", "--pidfile=", "gfws-sim", "--port", "0"], cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    output = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if ready:
            output += os.read(process.stdout.fileno(), 4096)
            match = re.search(rb"listening on (ws://127\.0\.0\.1:\d+)/v2", output)
            if match:
                return process, match.group(1).decode()
        assert process.poll() is None, output.decode()
    process.kill()
    raise AssertionError(f"simulator did not start: {output.decode()}")


def test_python_kraken_sdk_against_the_simulator(tmp_path):
    process, url = start_simulator(tmp_path)
    try:
        result = subprocess.run([sys.executable, os.path.join(HERE, "third_party", "kraken_sdk_client.py"), url, "3"],
                                capture_output=True, text=True, timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == 1
    assert summary["subscribe_ok"] == 4  # instrument, 2 tickers, 1 trade
    assert summary["subscribe_refused"] == 1  # NOPE/USD
    assert summary["pong"] >= 1
    assert summary["ticker"] > 0 and summary["trade"] > 0
    assert summary["sdk_book_snapshot"] == 2
    assert summary["sdk_book_update"] > 20
    assert "sdk_checksum_mismatch" not in summary

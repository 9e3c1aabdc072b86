"""The twistd plugins, run as a user would: a separate process, outside the repo.

These exercise the installed package (``pip install .``), so they also prove
the plugin file is packaged.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


def events_of(process, until, timeout=60.0):
    """The JSON events a running twistd prints, as they come, until ``until()`` holds (or time runs out)."""
    started, buffer = time.monotonic(), b""
    while not until() and time.monotonic() - started < timeout:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if not ready:
            assert process.poll() is None, process.stderr.read().decode()
            continue
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            return
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"{"):
                yield json.loads(line)


def run(args, cwd, timeout=60):
    return subprocess.run([TWISTD, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_help_lists_both_plugins_from_any_folder(tmp_path):
    out = run(["--help"], tmp_path).stdout
    commands = {line.split()[0] for line in out.splitlines() if line.startswith("    ") and line.split()}
    assert {"gfws", "gfws-sim"} <= commands, out  # "gfws-sim" alone must not pass for "gfws"


def test_gfws_help_documents_every_option(tmp_path):
    out = run(["-n", "gfws", "--help"], tmp_path).stdout
    assert "--config=" in out and "demo" in out
    out = run(["-n", "gfws-sim", "--help"], tmp_path).stdout
    for option in ("--port=", "--seed=", "--interval=", "--interface="):
        assert option in out


def test_a_bad_config_stops_startup_with_file_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[venue]\nname = "kraken"\n[[endpoints]]\nurl = "ws://127.0.0.1:1/v2"\n'
                   '[[subscriptions]]\nchannel = "book"\nsymbols = ["BTC/USD"]\ndepth = 7\n')
    result = run(["-n", "--pidfile=", "gfws", "--config", str(bad)], tmp_path)
    assert result.returncode == 1
    # One line on standard error, nothing else: no usage text, no traceback, nothing tried.
    expected = f"gfws: {bad}: subscriptions[0].depth: expected one of (10, 25, 100, 500, 1000), got 7\n"
    assert (result.stdout, result.stderr) == ("", expected)
    assert run(["-n", "--pidfile=", "gfws", "--config", str(bad), "--check"], tmp_path).stderr == expected


def test_check_version_and_what_cannot_work_are_said_in_one_line(tmp_path):
    import socket

    import gfws

    checked = run(["-n", "--pidfile=", "gfws", "--check"], tmp_path)
    assert checked.returncode == 0 and checked.stderr.endswith("demo.toml: OK\n") and checked.stdout == ""
    version = run(["-n", "gfws", "--version"], tmp_path)
    assert version.returncode == 0 and version.stdout.startswith(f"gfws {gfws.__version__} ")
    daemon = run(["--pidfile=", "gfws"], tmp_path)  # no -n: a daemon has no standard output to write to
    assert daemon.returncode == 1 and "writes to standard output, which a daemon does not have" in daemon.stderr
    assert daemon.stderr.count("\n") == 1 and not os.path.exists(tmp_path / "twistd.pid")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        config = tmp_path / "demo.toml"
        demo = open(os.path.join(os.path.dirname(gfws.__file__), "demo.toml")).read()
        config.write_text(demo.replace("port = 0 ", f"port = {busy.getsockname()[1]} "))
        result = run(["-n", "--pidfile=", "gfws", "--config", str(config)], tmp_path)
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.startswith(f"gfws: {config}: simulator.port: cannot listen on 127.0.0.1:")
        assert result.stderr.count("\n") == 1
    finally:
        busy.close()


def test_demo_prints_ticker_trade_and_book_for_two_symbols_then_stops_on_sigterm(tmp_path):
    started = time.monotonic()
    process = subprocess.Popen([TWISTD, "-n", "--pidfile=", "gfws"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: dict[tuple[str, str], float] = {}
    needed = {(kind, symbol) for kind in ("ticker", "trade", "book") for symbol in ("BTC/USD", "ETH/USD")}
    try:
        for event in events_of(process, until=lambda: needed <= set(seen)):
            seen.setdefault((event["type"], event.get("symbol")), time.monotonic() - started)
        assert needed <= set(seen), f"missing {needed - set(seen)}"
        print(f"demo: all six streams seen {max(seen[k] for k in needed):.2f}s after launch")
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    # twistd stops the services, then re-raises the signal so the exit
    # status says what ended it (Twisted's _exitSignal).
    assert process.returncode in (0, -signal.SIGTERM), err.decode()
    events = [json.loads(line) for line in out.splitlines()]  # standard output is events only (| jq)
    assert b"simulator connecting" in err  # the log went to standard error
    connection = [e for e in events if e["type"] == "connection"]
    assert connection[-1]["state"] == "shutdown"
    assert "closed with code 1000" in connection[-1]["reason"], connection[-1]


def test_the_demo_piped_into_head_stops_cleanly_with_one_message(tmp_path):
    process = subprocess.Popen([TWISTD, "-n", "--pidfile=", "gfws"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = [process.stdout.readline() for _ in range(3)]  # what `| head -3` reads...
    process.stdout.close()  # ...before it exits
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("the feed went on writing into a closed pipe") from None
    assert all(json.loads(line) for line in first)
    assert err.count(b"(EPIPE)") == 2, err.decode()[-2000:]  # the sink's line and the service's, once each
    assert b"Traceback" not in err, err.decode()[-2000:]
    assert process.returncode == 0


def test_the_embedding_example_runs_as_written(tmp_path):
    example = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples", "embedded.py")
    result = subprocess.run([sys.executable, example], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    books = [line for line in result.stdout.splitlines() if line.startswith("BTC/USD: ") and "checksum" in line]
    assert len(books) == 5, result.stdout


def test_logs_can_be_json_lines_for_a_log_shipper(tmp_path):
    process = subprocess.Popen([TWISTD, "-n", "--pidfile=", "--logger=gfws.tap.json_log", "gfws"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(20):
            json.loads(process.stdout.readline())  # events on standard output
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    records = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert records and any("connecting" in json.dumps(r) for r in records)
    assert all("log_format" in r or "log_io" in r for r in records)


def test_the_readme_python_block_runs_as_written(tmp_path):
    import re
    import socket

    readme = open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md")).read()
    (block,) = re.findall(r"```python\n(.*?)```", readme, re.S)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    venue = subprocess.Popen([TWISTD, "-n", "--pidfile=", "gfws-sim", "--port", str(port)], cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (tmp_path / "feed.toml").write_text(
        f'[venue]\nname = "kraken"\n[[endpoints]]\nurl = "ws://127.0.0.1:{port}/v2"\n'
        '[[subscriptions]]\nchannel = "book"\nsymbols = ["BTC/USD"]\n')
    (tmp_path / "readme.py").write_text(block)
    program = subprocess.Popen([sys.executable, "readme.py"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        books = [program.stdout.readline() for _ in range(3)]
        assert all(line.startswith("BTC/USD bid ") for line in books), books
    finally:
        program.send_signal(signal.SIGTERM)
        program.communicate(timeout=30)
        venue.send_signal(signal.SIGTERM)
        venue.wait(timeout=30)
    assert program.returncode in (0, -signal.SIGTERM)


def test_the_private_demo_prints_fills_and_orders_with_the_market_data(tmp_path):
    process = subprocess.Popen([TWISTD, "-n", "--pidfile=", "gfws", "--private"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: set[str] = set()
    try:
        for event in events_of(process, until=lambda: {"fill", "order", "book"} <= seen):
            seen.add(event["type"])
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert {"fill", "order", "book"} <= seen, f"seen only {seen}: {err.decode()[-2000:]}"
    from gfws.sim import DEMO_SECRET
    assert DEMO_SECRET.encode() not in err


def test_private_with_a_config_of_endpoints_is_one_line(tmp_path):
    config = tmp_path / "feed.toml"
    config.write_text('[venue]\nname = "kraken"\n[[endpoints]]\nurl = "wss://ws.kraken.com/v2"\n'
                      '[[subscriptions]]\nchannel = "trade"\nsymbols = ["BTC/USD"]\n')
    result = run(["-n", "--pidfile=", "gfws", "--config", str(config), "--private"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "--private runs the demo's simulated account" in result.stderr


def test_sighup_reopens_the_event_file_after_a_rotation(tmp_path):
    config = tmp_path / "feed.toml"
    config.write_text('[venue]\nname = "kraken"\n[simulator]\n[[subscriptions]]\nchannel = "trade"\n'
                      'symbols = ["BTC/USD"]\n[[sinks]]\npath = "events.jsonl"\n')
    process = subprocess.Popen([TWISTD, "-n", "--pidfile=", "gfws", "--config", str(config)], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    events, rotated = tmp_path / "events.jsonl", tmp_path / "events.jsonl.1"
    try:
        deadline = time.monotonic() + 30
        while not (events.exists() and events.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.rename(events, rotated)
        process.send_signal(signal.SIGHUP)
        while not events.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        size = rotated.stat().st_size
        while not (events.exists() and events.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert process.poll() is None  # SIGHUP's default would have ended it
        assert events.stat().st_size > 0 and rotated.stat().st_size == size  # the new lines go to the new file
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)

"""Two gfws processes split the symbols and publish into one real redis-server:
a consumer on the other side reads one logical feed (every symbol, each trade
once) with a consumer group, without knowing which shard wrote what."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import pytest

from tests.redis_server import RedisServer
from tests.test_twistd import TWISTD

SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/EUR", "ADA/USD", "DOGE/USD"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shard_config(folder, index, venue_port, redis_url):
    path = folder / f"shard-{index}.toml"
    path.write_text(
        f'[venue]\nname = "kraken"\n'
        f'[[endpoints]]\nname = "shard-{index}"\nurl = "ws://127.0.0.1:{venue_port}/v2"\n'
        f"[shard]\nindex = {index}\ncount = 2\n"
        f'[[subscriptions]]\nchannel = "book"\nsymbols = {json.dumps(SYMBOLS)}\n'
        f'[[subscriptions]]\nchannel = "trade"\nsymbols = {json.dumps(SYMBOLS)}\nsnapshot = true\n'
        f'[[sinks]]\ntype = "redis"\nurl = "{redis_url}"\n'
    )
    return str(path)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def test_two_shards_make_one_logical_feed_in_redis(tmp_path, redis_server):
    import redis

    venue_port = free_port()
    venue = subprocess.Popen([TWISTD, "-n", "--pidfile=", "gfws-sim", "--port", str(venue_port), "--interval", "0.02"],
                             cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shards = []
    try:
        time.sleep(0.5)  # the simulator listens (a shard that comes too early reconnects anyway)
        for index in (0, 1):
            config = shard_config(tmp_path, index, venue_port, redis_server.url)
            shards.append(subprocess.Popen([TWISTD, "-n", "--pidfile=", f"--logfile={tmp_path}/shard-{index}.log",
                                            "gfws", "--config", config], cwd=tmp_path))
        client = redis.Redis.from_url(redis_server.url)
        deadline = time.monotonic() + 30
        wanted = {f"gfws:kraken:{kind}:{s}" for kind in ("book", "trade") for s in SYMBOLS}
        while time.monotonic() < deadline:
            keys = {k.decode() for k in client.keys("gfws:kraken:*")}
            if wanted <= keys and all(client.xlen(k) >= 20 for k in wanted):
                break
            time.sleep(0.2)
        for shard in shards:
            shard.send_signal(signal.SIGTERM)
        for shard in shards:
            shard.wait(30)
        keys = {k.decode() for k in client.keys("gfws:kraken:*")}
        assert wanted <= keys, f"missing streams: {sorted(wanted - keys)}"
        # A consumer group reads every trade stream, across shards, once each.
        for symbol in SYMBOLS:
            stream = f"gfws:kraken:trade:{symbol}"
            client.xgroup_create(stream, "strategies", id="0")
            ids, trade_ids = [], []
            while True:
                batch = client.xreadgroup("strategies", "one", {stream: ">"}, count=500)
                if not batch:
                    break
                for entry_id, fields in batch[0][1]:
                    client.xack(stream, "strategies", entry_id)
                    ids.append(fields[b"id"].decode())
                    trade_ids.append(json.loads(fields[b"event"])["trade_id"])
            # One shard wrote each symbol: each trade once, in the venue's order.
            assert ids and len(ids) == len(set(ids)), symbol
            assert trade_ids == sorted(trade_ids), symbol
        # Each symbol's books came from one process: its endpoint's status and connection events say which.
        endpoints = {json.loads(fields[b"event"])["endpoint"]
                     for _, fields in client.xrange("gfws:kraken:connection:-")}
        assert endpoints == {"shard-0", "shard-1"}
    finally:
        for shard in shards:
            if shard.poll() is None:
                shard.kill()
        venue.send_signal(signal.SIGTERM)
        venue.wait(30)

"""Why msgspec: decode the real Kraken v2 capture with each candidate.

Run: python benchmarks/decode.py [ROUNDS]
Prints microseconds per message and the speed relative to the stdlib
baseline measured in the same run (higher is faster).  Only decoders that give
exact Decimals qualify for gfws; orjson (floats only) is shown for reference.
"""

from __future__ import annotations

import json
import os
import sys
import time
from decimal import Decimal

import msgspec
import orjson

from gfws.venues.kraken import KrakenV2Dialect

HERE = os.path.dirname(__file__)


def load_messages() -> list[bytes]:
    with open(os.path.join(HERE, "..", "tests", "fixtures", "orderbook-v2.json")) as f:
        data = json.load(f)
    return [json.dumps(m, separators=(",", ":")).encode() for m in [data["init"], *data["updates"]]]


def best_of(decode, messages: list[bytes], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for m in messages:
            decode(m)
        best = min(best, time.perf_counter() - start)
    return best / len(messages) * 1e6


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    messages = load_messages() * 20
    dialect = KrakenV2Dialect()
    untyped = msgspec.json.Decoder(float_hook=Decimal)
    candidates = [
        ("stdlib json, parse_float=Decimal (baseline)", lambda m: json.loads(m, parse_float=Decimal), True),
        ("orjson (floats: not exact)", orjson.loads, False),
        ("msgspec untyped, float_hook=Decimal", untyped.decode, True),
        ("msgspec typed Structs via KrakenV2Dialect.parse", dialect.parse, True),
    ]
    baseline = None
    print(f"{len(messages)} messages (real BTC/USD book capture), best of {rounds} rounds")
    for name, decode, exact in candidates:
        us = best_of(decode, messages, rounds)
        baseline = baseline or us
        print(f"  {name:<50} {us:6.2f} us/msg  x{baseline / us:4.1f}  {'exact' if exact else 'floats'}")


if __name__ == "__main__":
    main()

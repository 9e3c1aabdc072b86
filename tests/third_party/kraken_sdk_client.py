"""Run python-kraken-sdk's own WebSocket clients against a Kraken v2 endpoint.

Usage: python kraken_sdk_client.py ws://127.0.0.1:PORT SECONDS
Prints one JSON summary line.  Only the URLs differ from production use: the
SDK's book client verifies every checksum with its own code; its REST lookup
of pair decimals is answered from the endpoint's own instrument channel.
"""

import asyncio
import json
import sys
from collections import Counter

from kraken.spot import SpotOrderBookClient, SpotWSClient

URL, SECONDS = sys.argv[1], float(sys.argv[2])
summary: Counter = Counter()
precisions: dict = {}


class Market:
    """Stands in for the SDK's REST AssetPairs call (not a WebSocket matter)."""

    def get_asset_pairs(self, pair):
        price, qty = precisions[pair]
        return {pair: {"pair_decimals": price, "lot_decimals": qty}}


class Books(SpotOrderBookClient):
    WS_URL = URL

    async def on_book_update(self, pair, message):
        if "error" in message:
            summary["sdk_checksum_mismatch"] += 1
        else:
            summary[f"sdk_book_{message['type']}"] += 1


async def on_message(message):
    if message.get("channel") == "instrument":
        for pair in message["data"]["pairs"]:
            precisions[pair["symbol"]] = (pair["price_precision"], pair["qty_precision"])
    key = message.get("channel") or message.get("method")
    if "success" in message:
        key = f"{key}_{'ok' if message['success'] else 'refused'}"
    summary[key] += 1


async def main():
    client = SpotWSClient(callback=on_message, ws_url=URL)
    await client.start()
    await client.subscribe(params={"channel": "instrument"})
    await client.subscribe(params={"channel": "ticker", "symbol": ["BTC/USD", "ETH/USD"]})
    await client.subscribe(params={"channel": "trade", "symbol": ["BTC/USD"]})
    await client.subscribe(params={"channel": "book", "symbol": ["NOPE/USD"]})
    await client.send_message({"method": "ping", "req_id": 7})
    await asyncio.sleep(0.5)  # the instrument snapshot carries the precisions
    books = Books(depth=10)
    books._SpotOrderBookClient__market = Market()
    await books.start()
    await books.add_book(pairs=["BTC/USD", "DOGE/USD"])
    await asyncio.sleep(SECONDS)
    await books.close()
    await client.close()
    print(json.dumps(summary))


asyncio.run(main())

"""gfws embedded in a Twisted program: a local simulated venue, a feed, a strategy.

Run: python examples/embedded.py   (no internet: it starts its own simulator)
Prints the first five verified books, then stops everything cleanly (as it stops, the book says it is no longer
valid: its connection is gone).
"""

from twisted.internet import reactor

from gfws import FeedService, parse_config
from gfws.sim import SimulatorService, SimVenue

venue = SimulatorService(SimVenue(clock=reactor, seed=1), port=0)  # a Kraken v2 venue on a free loopback port
venue.startService()

config = parse_config({
    "venue": {"name": "kraken"},
    "endpoints": [{"name": "local", "url": venue.url}],  # for Kraken itself: load_config("examples/kraken.toml")
    "subscriptions": [{"channel": "book", "symbols": ["BTC/USD"], "depth": 10}],
})
feed = FeedService(config)
seen = []


def on_book(book):
    """Called synchronously for each book event: verified, or saying it stopped being true."""
    if not book.valid:
        print(f"{book.symbol}: book not valid ({book.reason}); waiting for the next snapshot")
        return
    (bid, bid_qty), (ask, ask_qty) = book.bids[0], book.asks[0]
    print(f"{book.symbol}: {bid_qty} @ {bid} / {ask_qty} @ {ask}  (checksum {book.checksum})")
    seen.append(book)
    if len(seen) == 5:
        feed.stopService().addBoth(lambda _: venue.stopService()).addBoth(lambda _: reactor.stop())


feed.subscribe(on_book, "book")
feed.startService()  # or feed.setServiceParent(application) under twistd
reactor.run()

"""A strategy's own test under pytest-twisted, with gfws.testing (run: pytest examples/test_strategy_pytest.py)."""

import pytest_twisted

from gfws.testing import SimulatedMarket


class MidPrice:
    """The strategy under test: keeps the mid price, forgets it when the book stops being true."""

    def __init__(self):
        self.mid = None

    def on_book(self, book):
        self.mid = (book.bids[0][0] + book.asks[0][0]) / 2 if book.valid else None


@pytest_twisted.inlineCallbacks
def test_mid_price_follows_the_book_and_drops_when_it_is_invalid():
    market = SimulatedMarket(subscriptions=[{"channel": "book", "symbols": ["BTC/USD"]}])
    yield market.start()
    try:
        strategy = MidPrice()
        market.feed.subscribe(strategy.on_book, "book")
        book = yield market.next(lambda e: e.__struct_config__.tag == "book" and e.valid)
        assert strategy.mid == (book.bids[0][0] + book.asks[0][0]) / 2
        market.venue.corrupt_next_checksum("BTC/USD")  # a fault on demand
        yield market.next(lambda e: e.__struct_config__.tag == "book" and not e.valid)
        assert strategy.mid is None  # the strategy stopped trusting the book
        yield market.next(lambda e: e.__struct_config__.tag == "book" and e.valid and e.snapshot)
        assert strategy.mid is not None  # and trusts the new snapshot
    finally:
        yield market.stop()

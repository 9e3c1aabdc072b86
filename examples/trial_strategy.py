"""A strategy's own test under trial, with gfws.testing (run: trial examples/trial_strategy.py)."""

from twisted.internet import defer
from twisted.trial import unittest

from gfws.testing import SimulatedMarket


class MidPrice:
    def __init__(self):
        self.mid = None

    def on_book(self, book):
        self.mid = (book.bids[0][0] + book.asks[0][0]) / 2 if book.valid else None


class MidPriceTests(unittest.TestCase):
    def setUp(self):
        self.market = SimulatedMarket(subscriptions=[{"channel": "book", "symbols": ["BTC/USD"]}])
        return self.market.start()

    def tearDown(self):
        return self.market.stop()  # trial then checks the reactor is clean

    @defer.inlineCallbacks
    def test_mid_price_survives_a_dropped_connection(self):
        strategy = MidPrice()
        self.market.feed.subscribe(strategy.on_book, "book")
        yield self.market.next(lambda e: e.__struct_config__.tag == "book" and e.valid)
        self.assertIsNotNone(strategy.mid)
        yield self.market.gate.close_all()  # the venue drops us
        yield self.market.next(lambda e: e.__struct_config__.tag == "book" and not e.valid)
        self.assertIsNone(strategy.mid)
        yield self.market.next(lambda e: e.__struct_config__.tag == "book" and e.valid and e.snapshot)
        self.assertIsNotNone(strategy.mid)  # reconnected, resubscribed, verified again

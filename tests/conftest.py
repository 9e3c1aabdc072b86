"""Shared test helpers.

pytest-twisted runs one real reactor for the whole session; it is imported
lazily (never at module top level) so that unit tests stay reactor-free.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import Any

import pytest

HERE = os.path.dirname(__file__)


@pytest.fixture(scope="session")
def orderbook_fixture() -> dict[str, Any]:
    """The real Kraken v2 capture (see tests/fixtures/SOURCE.md)."""
    with open(os.path.join(HERE, "fixtures", "orderbook-v2.json")) as f:
        return json.load(f, parse_float=Decimal)


@pytest.fixture(scope="session")
def orderbook_messages() -> list[bytes]:
    """The capture as wire messages: snapshot first, then the updates."""
    with open(os.path.join(HERE, "fixtures", "orderbook-v2.json")) as f:
        data = json.load(f)
    return [json.dumps(m).encode() for m in [data["init"], *data["updates"]]]

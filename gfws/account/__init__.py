"""The account's own data: executions into fills and orders, each fill once."""

from gfws.account.executions import ExecutionsHandler
from gfws.account.ledger import FillLedger
from gfws.account.orders import OrderStates

__all__ = ["ExecutionsHandler", "FillLedger", "OrderStates"]

"""One open connection's conversation: route, subscriptions, requests, liveness.

Clock only, no sockets: the endpoint hands it frames and a link.
"""

from gfws.session.router import FeedSession

__all__ = ["FeedSession"]

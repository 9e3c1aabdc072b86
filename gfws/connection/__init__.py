"""Connections: the thin Autobahn edge, one endpoint per venue URL, backoff."""

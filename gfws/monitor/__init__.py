"""Monitoring, read-only over the rest: health, diagnostics, Prometheus metrics, the web server.

It reads the objects the service hands it and changes nothing; only the
service imports it.
"""

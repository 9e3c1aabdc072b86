"""The monitoring web server: /metrics (Prometheus), /health, /diagnostics."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

from prometheus_client.registry import CollectorRegistry
from prometheus_client.twisted import MetricsResource
from twisted.application.service import Service
from twisted.logger import Logger
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site


class JsonResource(Resource):
    """A JSON document made on each request; ``status(doc)`` picks the HTTP status."""

    isLeaf = True

    def __init__(self, read: Callable[[], dict[str, Any]], status: Callable[[dict[str, Any]], int] = lambda d: 200):
        super().__init__()
        self._read = read
        self._status = status

    def render_GET(self, request: Request) -> bytes:
        document = self._read()
        request.setResponseCode(self._status(document))
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(document, default=str, allow_nan=False).encode() + b"\n"


class Dashboard(Resource):
    """The live page at ``/``: one self-contained file (no CDN), polling /diagnostics."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return resources.files("gfws.monitor").joinpath("dashboard.html").read_bytes()


class _Root(Resource):
    def getChild(self, path: bytes, request: Request) -> IResource:
        return Dashboard() if path == b"" else notFound()


def site(registry: CollectorRegistry, health: Callable[[], dict[str, Any]],
         diagnostics: Callable[[], dict[str, Any]]) -> Site:
    root = _Root()
    root.putChild(b"metrics", MetricsResource(registry=registry))
    root.putChild(b"health", JsonResource(health, lambda doc: 200 if doc["healthy"] else 503))
    root.putChild(b"diagnostics", JsonResource(diagnostics))
    return Site(root)


class MonitorServer(Service):
    """Listens on ``host:port`` while running (port 0: any free port; ``url`` says which, and the log)."""

    log = Logger()

    def __init__(self, reactor: Any, host: str, port: int, web: Site) -> None:
        self._reactor = reactor
        self._host = host
        self._port = port
        self._site = web
        self._listening: Any = None

    @property
    def url(self) -> str | None:
        if self._listening is None:
            return None
        address = self._listening.getHost()
        host = f"[{address.host}]" if ":" in address.host else address.host
        return f"http://{host}:{address.port}/"

    def startService(self) -> None:
        super().startService()
        self._listening = self._reactor.listenTCP(self._port, self._site, interface=self._host)
        self.log.info("monitor: dashboard {url} (metrics {url}metrics, health {url}health)", url=self.url)

    def stopService(self) -> Any:
        super().stopService()
        listening, self._listening = self._listening, None
        return listening.stopListening() if listening is not None else None

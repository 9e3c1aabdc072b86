"""Publishing: the in-process event bus and the sinks it feeds."""

from gfws.publish.bus import Publisher
from gfws.publish.jsonl import JsonlSink

__all__ = ["JsonlSink", "Publisher"]

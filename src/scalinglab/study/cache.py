"""The Study's cache: results keyed by the run store's state and the question asked.

A store's state (:func:`store_state`) changes whenever its file or write-ahead log does, so a
result computed for one state is never shown for another, and a sweep writing runs refreshes
the dashboard's fits by itself. One computation per key runs at a time, however many requests
ask for it in parallel (the dashboard's page asks for several charts at once).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any


def store_state(path: Path) -> str:
    """A token that changes whenever the store file (or its WAL) does."""
    stats = [p.stat() for p in (path, path.with_name(path.name + ".wal")) if p.exists()]
    return "-".join(f"{s.st_mtime_ns:x}.{s.st_size:x}" for s in stats) or "absent"


class Cache:
    """A small LRU of computed results (thread-safe; an exception is not cached)."""

    def __init__(self, size: int = 64) -> None:
        self.items: OrderedDict[Any, Any] = OrderedDict()
        self.size = size
        self.lock = threading.Lock()
        self.key_locks: dict[Any, threading.Lock] = {}

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
            key_lock = self.key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one computation per key even when the page asks in parallel
            with self.lock:
                if key in self.items:
                    return self.items[key]
            try:
                value = compute()
            finally:
                with self.lock:
                    self.key_locks.pop(key, None)
            with self.lock:
                self.items[key] = value
                while len(self.items) > self.size:
                    self.items.popitem(last=False)
            return value

    def __len__(self) -> int:
        return len(self.items)


__all__ = ["Cache", "store_state"]

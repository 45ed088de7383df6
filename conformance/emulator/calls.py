"""The log of EC2 calls the emulator answered: action, HTTP status, and error code if any.

Tests read it (`GET /_emulator/calls`) to check what an agent asked for and how often, e.g.
that it retried after an injected RequestLimitExceeded.
"""

import re
import threading

_CODE = re.compile(rb"<Code>([^<]*)</Code>")


class Calls:
    def __init__(self):
        self._lock = threading.Lock()
        self._calls = []

    def record(self, action, status, body):
        code = None
        if status >= 400:
            match = _CODE.search(body)
            code = match.group(1).decode() if match else None
        with self._lock:
            self._calls.append({"action": action, "status": status, "code": code})

    def all(self):
        with self._lock:
            return list(self._calls)

    def clear(self):
        with self._lock:
            self._calls.clear()

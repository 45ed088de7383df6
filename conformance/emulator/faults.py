"""Injected EC2 failures: "the next N calls of this action fail with this error code".

A test sets them through the control API (`POST /_emulator/faults`) to drive the agent's
error handling (throttling, server errors, an exhausted subnet) without setting that state up.
A failing call is answered with EC2's error document and never reaches moto, so it changes
nothing, as a throttled or failed EC2 call does.
"""

import threading
import uuid
from xml.sax.saxutils import escape

# EC2's HTTP status for the codes tests inject most; any other code gets 400.
DEFAULT_STATUS = {
    "RequestLimitExceeded": 503,
    "Unavailable": 503,
    "ServiceUnavailable": 503,
    "InternalError": 500,
    "InternalFailure": 500,
}

ANY_ACTION = "*"


def error_document(code, message):
    """EC2's error answer body (the Query protocol's `<Response><Errors>` document)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    )


class Faults:
    """Pending failures, per action (or `*` for any action), used in the order added."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending = []  # [action, code, status, message, remaining]

    def add(self, action, code, count, status=None, message=None):
        status = int(status or DEFAULT_STATUS.get(code, 400))
        if not 400 <= status <= 599:
            raise ValueError(f"status {status} is not an error status")
        message = message or f"Injected failure of {action}: {code}."
        with self._lock:
            self._pending.append([action, code, status, message, int(count)])

    def clear(self):
        with self._lock:
            self._pending.clear()

    def take(self, action):
        """The failure the next call of `action` gets, if any: (status, code, message)."""
        with self._lock:
            for fault in self._pending:
                if fault[0] in (action, ANY_ACTION) and fault[4] > 0:
                    fault[4] -= 1
                    return fault[1], fault[2], fault[3]
            self._pending = [f for f in self._pending if f[4] > 0]
        return None

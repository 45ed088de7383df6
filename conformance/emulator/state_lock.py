"""The one lock around moto's state.

moto's models are not thread-safe and the HTTP servers answer on one thread per request, so
every EC2 call, every IMDS read and every control request holds this lock for its whole
length: the cloud changes one call at a time, and IMDS never sees half a call.
"""

import threading

LOCK = threading.RLock()

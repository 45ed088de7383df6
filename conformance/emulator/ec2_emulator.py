"""The emulated cloud of the ENI tests: moto's EC2 with the patches of moto_patches.py, an
IMDSv2 endpoint read from moto's state (imds.py), fault injection (faults.py) and a control
API (control.py).

    python ec2_emulator.py [--host 127.0.0.1] [--ec2-port 0] [--imds-port 0] [--region us-west-2]

Two HTTP servers, in one process so that both see one state: EC2 (moto's Query API, plus
`/_emulator/` for the control API) and IMDS, each on its own port, as EC2's endpoint and
169.254.169.254 are different addresses for the agent. Port 0 picks a free port. Once both
listen, one JSON line goes to stdout: {"ec2_port": P, "imds_port": Q}.

The process exits when its parent does (`--parent-pid`), so a test killed outright leaves no
emulator behind; conformance/src/ec2_emulator.rs also kills its process group on drop.

Run with the suite's virtualenv (conformance/packages.sh), which has the pinned moto.
"""

import argparse
import io
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import moto_patches  # noqa: E402
from calls import Calls  # noqa: E402
from control import PREFIX, Control  # noqa: E402
from faults import Faults, error_document  # noqa: E402
from imds import Imds  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from state_lock import LOCK  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402


class Ec2Front:
    """In front of moto: the control API, injected faults, one call at a time, the call log."""

    def __init__(self, moto_app, control, faults, calls):
        self._moto = moto_app
        self._control = control
        self._faults = faults
        self._calls = calls

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith(PREFIX):
            return self._control(environ, start_response)
        # The action is in the form body (POST) or the query string; read the body once and
        # hand moto a fresh copy.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        params = parse_qs(environ.get("QUERY_STRING", ""))
        params.update(parse_qs(body.decode("utf-8", "replace")))
        action = params.get("Action", [""])[0]

        fault = self._faults.take(action) if action else None
        if fault is not None:
            code, status, message = fault
            answer = error_document(code, message).encode()
            self._calls.record(action, status, answer)
            start_response(f"{status} Injected", [("Content-Type", "text/xml")])
            return [answer]

        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        try:
            with LOCK:
                answer = b"".join(self._moto(environ, capture))
        except Exception:
            answer = b""
            raise
        finally:
            if action:
                self._calls.record(action, captured.get("status", 500), answer)
        return [answer]


def _exit_with_parent(parent_pid):
    """Exits once `parent_pid` is gone (this process is then re-parented)."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(0)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ec2-port", type=int, default=0)
    parser.add_argument("--imds-port", type=int, default=0)
    parser.add_argument("--region", default="us-west-2")
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args(argv)

    moto_patches.apply()
    moto_app = DomainDispatcherApplication(create_backend_app)
    imds = Imds()
    faults, calls = Faults(), Calls()
    control = Control(moto_app, args.region, imds, faults, calls)
    control.warm_up()
    front = Ec2Front(moto_app, control, faults, calls)

    servers = [
        make_server(args.host, args.ec2_port, front, threaded=True, request_handler=MotoRequestHandler),
        make_server(args.host, args.imds_port, imds, threaded=True),
    ]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    if args.parent_pid is not None:
        threading.Thread(target=_exit_with_parent, args=(args.parent_pid,), daemon=True).start()
    print(json.dumps({"ec2_port": servers[0].server_port, "imds_port": servers[1].server_port}), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])

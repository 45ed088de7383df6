"""An IMDSv2 endpoint for the instances ("the nodes"), read from moto's live EC2 state.

moto's own IMDS serves fixed values (`i-fake`, `127.0.0.1`) and answers
`network/interfaces/macs/` with HTTP 500; nothing ties it to EC2 state. This one answers every
GET from the instance as moto has it at that moment, so an ENI appears under
`network/interfaces/macs/` only once it is attached, with its MAC, device number and
addresses, and an address assigned or unassigned through EC2 shows in `local-ipv4s` on the
next read (real IMDS may lag a few seconds; this one never does).

Real IMDS knows its caller by the instance the request comes from. Here a request whose source
address is an instance's primary private address is that instance's (each node's agent reaches
IMDS from its own primary address); any other caller (loopback: the tests themselves) gets the
instance set through the control API, by default the newest running one.

IMDSv2 only, as on a node that requires tokens: `PUT /latest/api/token` with
`X-aws-ec2-metadata-token-ttl-seconds: 1..21600` returns a token, and every GET must carry it
in `X-aws-ec2-metadata-token` (401 without, or once it expired). A missing key is a 404, which
the agent reads as "none" (e.g. `ipv4-prefix` on an ENI without prefixes).
"""

import json
import secrets
import threading
import time

from moto.ec2.models import ec2_backends
from werkzeug.wrappers import Request, Response

from state_lock import LOCK

MAX_TTL = 21600
META = "/latest/meta-data/"
IDENTITY = "/latest/dynamic/instance-identity/document"


def _find_instance(instance_id, caller):
    """The running instance whose primary address is `caller`; else the instance
    `instance_id`, or without one the newest running instance (so a test that launches its
    node through EC2 itself needs no control call); None if there is none."""
    newest = None
    for account, regions in list(ec2_backends.items()):
        for region, backend in list(regions.items()):
            for instance in backend.all_instances():
                found = (account, region, backend, instance)
                if instance.state == "running" and instance.private_ip == caller:
                    return found
    for account, regions in list(ec2_backends.items()):
        for region, backend in list(regions.items()):
            for instance in backend.all_instances():
                found = (account, region, backend, instance)
                if instance_id is not None:
                    if instance.id == instance_id:
                        return found
                elif instance.state == "running" and (
                    newest is None or instance.launch_time >= newest[3].launch_time
                ):
                    newest = found
    return newest


def _listing(keys):
    return "\n".join(keys)


def _interface_fields(backend, eni):
    """The keys under `network/interfaces/macs/<mac>/`, for the fields the agent reads."""
    vpc = backend.get_vpc(eni.subnet.vpc_id)
    # EC2 lists the primary address first; the agent relies on it.
    ips = sorted(eni.private_ip_addresses, key=lambda i: not i.get("Primary"))
    fields = {
        "mac": eni.mac_address,
        "interface-id": eni.id,
        "device-number": str(eni.device_index),
        "network-card": "0",
        "owner-id": eni.owner_id,
        "subnet-id": eni.subnet.id,
        "vpc-id": eni.subnet.vpc_id,
        "security-group-ids": "\n".join(sorted(g.id for g in eni.group_set)),
        "local-ipv4s": "\n".join(i["PrivateIpAddress"] for i in ips),
        "subnet-ipv4-cidr-block": eni.subnet.cidr_block,
        "vpc-ipv4-cidr-block": vpc.cidr_block,
        "vpc-ipv4-cidr-blocks": "\n".join(
            c["cidr_block"] for c in vpc.get_cidr_block_association_set()
        ),
    }
    prefixes = getattr(eni, "ipv4_prefixes", [])
    if prefixes:
        fields["ipv4-prefix"] = "\n".join(p["Ipv4Prefix"] for p in prefixes)
    return fields


class Imds:
    """The IMDS WSGI application. `instance_id` is the instance it describes to a caller that
    is no instance's primary address (None: the newest running one; with no instance at all
    every metadata GET is a 404)."""

    def __init__(self):
        self.instance_id = None
        self._tokens = {}  # token -> expiry (time.monotonic())
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path == "/latest/api/token":
            response = self._token(request)
        elif request.method != "GET":
            response = Response("", status=405)
        else:
            remaining = self._check(request.headers.get("X-aws-ec2-metadata-token"))
            if remaining is None:
                response = Response("", status=401)
            else:
                with LOCK:
                    status, body = self._get(request.path, request.remote_addr)
                response = Response(body, status=status, content_type="text/plain")
                response.headers["X-Aws-Ec2-Metadata-Token-Ttl-Seconds"] = str(remaining)
        return response(environ, start_response)

    def _token(self, request):
        if request.method != "PUT":
            return Response("", status=405)
        ttl = request.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TTL:
            return Response("", status=400)
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + int(ttl)
        response = Response(token, content_type="text/plain")
        response.headers["X-Aws-Ec2-Metadata-Token-Ttl-Seconds"] = ttl
        return response

    def _check(self, token):
        """Seconds the token has left, or None if it is missing, unknown or expired."""
        with self._lock:
            expiry = self._tokens.get(token or "")
        left = (expiry or 0) - time.monotonic()
        return int(left) if left > 0 else None

    def _get(self, path, caller):
        found = _find_instance(self.instance_id, caller)
        if found is None:
            return 404, "Not Found"
        account, region, backend, instance = found
        if path == IDENTITY:
            return 200, self._identity(account, region, instance)
        if not path.startswith(META):
            return 404, "Not Found"
        value = self._value(region, backend, instance, path[len(META) :])
        return (404, "Not Found") if value is None else (200, value)

    def _value(self, region, backend, instance, key):
        enis = sorted(instance.nics.values(), key=lambda e: e.device_index)
        primary = instance.nics[0]
        top = {
            "instance-id": instance.id,
            "instance-type": instance.instance_type,
            "local-ipv4": primary.private_ip_address,
            "mac": primary.mac_address,
            "placement/availability-zone": instance.placement.zone,
            "placement/region": region,
        }
        directories = {
            "": ["instance-id", "instance-type", "local-ipv4", "mac", "network/", "placement/"],
            "placement/": ["availability-zone", "region"],
            "network/": ["interfaces/"],
            "network/interfaces/": ["macs/"],
            "network/interfaces/macs/": [e.mac_address + "/" for e in enis],
        }
        if key in top:
            return top[key]
        if key in directories or key + "/" in directories:
            return _listing(directories.get(key) or directories[key + "/"])
        if not key.startswith("network/interfaces/macs/"):
            return None
        mac, _, field = key[len("network/interfaces/macs/") :].partition("/")
        eni = next((e for e in enis if e.mac_address == mac), None)
        if eni is None:
            return None
        fields = _interface_fields(backend, eni)
        if field == "":
            return _listing(sorted(fields))
        return fields.get(field)

    def _identity(self, account, region, instance):
        document = {
            "accountId": account,
            "availabilityZone": instance.placement.zone,
            "imageId": instance.image_id,
            "instanceId": instance.id,
            "instanceType": instance.instance_type,
            "privateIp": instance.nics[0].private_ip_address,
            "region": region,
            "version": "2017-09-30",
        }
        return json.dumps(document, indent=2)

"""The emulator's control API, under `/_emulator/` on the EC2 port (JSON in, JSON out).

    POST   /_emulator/node           seed a node: VPC, subnet, security group, one running
                                     instance ({"vpc_id": "vpc-..."}: a subnet and security
                                     group in that VPC instead of a new VPC); IMDS then
                                     describes that instance to callers it cannot tell apart
    PUT    /_emulator/imds-instance  {"instance_id": "i-..." | null}: the instance IMDS
                                     describes (null: the newest running one, the default)
    GET    /_emulator/state          every instance and ENI, as the agent's tests check them
    POST   /_emulator/faults         {"action", "code", "count", "status"?, "message"?}
    DELETE /_emulator/faults         forget pending faults
    GET    /_emulator/calls          the EC2 calls answered so far
    DELETE /_emulator/calls          forget them

The node is made through moto's own EC2 Query API (in process, bypassing faults and the call
log), not through moto's model constructors, so it is made as a client would make it.
"""

import json
import xml.etree.ElementTree as ET

from moto.ec2.models import ec2_backends
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from state_lock import LOCK

PREFIX = "/_emulator/"


class SeedError(Exception):
    pass


def _json(value, status=200):
    return Response(json.dumps(value, indent=1), status=status, content_type="application/json")


class Control:
    def __init__(self, moto_app, region, imds, faults, calls):
        self._moto = Client(moto_app)
        self._region = region
        self._imds = imds
        self._faults = faults
        self._calls = calls

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self._route(request)
        except (SeedError, ValueError, KeyError, TypeError) as e:
            response = _json({"error": f"{type(e).__name__}: {e}"}, status=400)
        return response(environ, start_response)

    def _route(self, request):
        route = (request.method, request.path[len(PREFIX) :])
        body = request.get_json(silent=True) or {}
        if route == ("POST", "node"):
            with LOCK:
                return _json(self._seed_node(body))
        if route == ("PUT", "imds-instance"):
            self._imds.instance_id = body.get("instance_id")
            return _json({"instance_id": self._imds.instance_id})
        if route == ("GET", "state"):
            with LOCK:
                return _json(_state())
        if route == ("POST", "faults"):
            self._faults.add(
                body["action"], body["code"], body["count"], body.get("status"), body.get("message")
            )
            return _json({})
        if route == ("DELETE", "faults"):
            self._faults.clear()
            return _json({})
        if route == ("GET", "calls"):
            return _json(self._calls.all())
        if route == ("DELETE", "calls"):
            self._calls.clear()
            return _json({})
        return _json({"error": f"no route {request.method} {request.path}"}, status=404)

    def warm_up(self):
        """Makes moto build its EC2 app and backend now, not on a test's first call."""
        with LOCK:
            self._ec2(self._region, "DescribeInstances")

    def _ec2(self, region, action, **params):
        """One EC2 Query call to moto; returns the answer's root element."""
        form = {"Action": action, "Version": "2016-11-15", **params}
        auth = (
            "AWS4-HMAC-SHA256 Credential=test/20250101/" + region + "/ec2/aws4_request, "
            "SignedHeaders=host, Signature=0"
        )
        answer = self._moto.post("/", data=form, headers={"Authorization": auth})
        if answer.status_code != 200:
            raise SeedError(f"{action}: HTTP {answer.status_code}: {answer.get_data(as_text=True)}")
        root = ET.fromstring(answer.get_data())
        for element in root.iter():
            element.tag = element.tag.rpartition("}")[2]  # drop the EC2 XML namespace
        return root

    def _seed_node(self, spec):
        region = spec.get("region") or self._region
        zone = spec.get("availability_zone") or region + "a"
        vpc_cidr = spec.get("vpc_cidr", "10.0.0.0/16")
        subnet_cidr = spec.get("subnet_cidr", "10.0.1.0/24")
        instance_type = spec.get("instance_type", "t3.medium")

        def text(root, path):
            found = root.find(path)
            if found is None:
                raise SeedError(f"no {path} in {ET.tostring(root)[:500]!r}")
            return found.text

        # A second node joins the first one's VPC: the nodes of one cluster share it.
        vpc = spec.get("vpc_id")
        if vpc is None:
            vpc = text(self._ec2(region, "CreateVpc", CidrBlock=vpc_cidr), "vpc/vpcId")
        else:
            vpc_cidr = text(
                self._ec2(region, "DescribeVpcs", **{"VpcId.1": vpc}), "vpcSet/item/cidrBlock"
            )
        subnet = text(
            self._ec2(
                region, "CreateSubnet", VpcId=vpc, CidrBlock=subnet_cidr, AvailabilityZone=zone
            ),
            "subnet/subnetId",
        )
        group = text(
            self._ec2(
                region,
                "CreateSecurityGroup",
                GroupName="node-" + subnet,
                GroupDescription="the node's security group",
                VpcId=vpc,
            ),
            "groupId",
        )
        image = text(self._ec2(region, "DescribeImages", **{"Owner.1": "amazon"}), "imagesSet/item/imageId")
        run = self._ec2(
            region,
            "RunInstances",
            ImageId=image,
            MinCount="1",
            MaxCount="1",
            InstanceType=instance_type,
            SubnetId=subnet,
            **{"SecurityGroupId.1": group, "Placement.AvailabilityZone": zone},
        )
        instance = text(run, "instancesSet/item/instanceId")
        self._imds.instance_id = instance
        eni = text(run, "instancesSet/item/networkInterfaceSet/item/networkInterfaceId")
        return {
            "region": region,
            "availability_zone": zone,
            "vpc_id": vpc,
            "vpc_cidr": vpc_cidr,
            "subnet_id": subnet,
            "subnet_cidr": subnet_cidr,
            "security_group_id": group,
            "instance_id": instance,
            "instance_type": instance_type,
            "primary_eni_id": eni,
            "primary_ip": text(run, "instancesSet/item/privateIpAddress"),
            "mac": text(run, "instancesSet/item/networkInterfaceSet/item/macAddress"),
        }


def _eni_state(eni):
    attachment = None
    if eni.attachment_id:
        attachment = {
            "attachment_id": eni.attachment_id,
            "instance_id": eni.instance.id,
            "device_index": eni.device_index,
            "delete_on_termination": bool(eni.delete_on_termination),
        }
    ips = sorted(eni.private_ip_addresses, key=lambda i: not i.get("Primary"))
    return {
        "id": eni.id,
        "subnet_id": eni.subnet.id,
        "vpc_id": eni.subnet.vpc_id,
        "mac": eni.mac_address,
        "status": eni.status,
        "description": eni.description,
        "private_ips": [i["PrivateIpAddress"] for i in ips],
        "prefixes": [p["Ipv4Prefix"] for p in getattr(eni, "ipv4_prefixes", [])],
        "security_group_ids": sorted(g.id for g in eni.group_set),
        "tags": {t["key"]: t["value"] for t in eni.get_tags()},
        "attachment": attachment,
    }


def _state():
    instances, enis = [], []
    for regions in list(ec2_backends.values()):
        for region, backend in list(regions.items()):
            for instance in backend.all_instances():
                instances.append(
                    {
                        "id": instance.id,
                        "region": region,
                        "instance_type": instance.instance_type,
                        "state": instance.state,
                        "enis": {str(i): e.id for i, e in sorted(instance.nics.items())},
                    }
                )
            enis.extend(_eni_state(e) for e in list(getattr(backend, "enis", {}).values()))
    return {"instances": instances, "enis": enis}

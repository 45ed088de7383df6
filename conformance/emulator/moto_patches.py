"""The narrow patches that make moto 5.2.5's EC2 ENI model behave like EC2 where a node agent
that keeps a warm pool of ENI addresses depends on it.

Every patch replaces one moto function, keeps the original where it still does the work, and
says which gap of stock moto it closes (each gap was checked against stock moto in server
mode; see shared/research/eni.md, section 5a). They touch moto internals, so they are tied to
the moto version pinned in requirements.txt.

`apply()` installs them once, before the first request.
"""

from moto.ec2 import exceptions as ec2_exceptions
from moto.ec2.models import elastic_network_interfaces as eni_models
from moto.ec2.models import subnets as subnet_models
from moto.ec2.models.instance_types import INSTANCE_TYPES
from moto.ec2.responses import elastic_network_interfaces as eni_responses
from moto.core.responses import ActionResult, EmptyResult

import addresses


# An EC2 error answer (HTTP 400, `<Response><Errors><Error><Code>`). moto's own class, not a
# subclass: moto's serializer finds the service of an error from the module its class is
# defined in, which must be `moto.ec2...`.
Ec2Error = ec2_exceptions.EC2ClientError


def _network_info(instance_type):
    return INSTANCE_TYPES.get(instance_type, {}).get("NetworkInfo", {})


def _allocate_ip(subnet, pending=True):
    try:
        return addresses.allocate_ip(subnet, pending)
    except addresses.NoFreeAddress as e:
        raise Ec2Error(e.code, e.message) from None


def _allocate_prefix(subnet):
    try:
        return addresses.allocate_prefix(subnet)
    except addresses.NoFreeAddress as e:
        raise Ec2Error(e.code, e.message) from None


# --- 1. Addresses: unique, lowest free, never .0-.3 nor the broadcast address -------------
# Stock: the ENI module draws addresses with `random_private_ip` (random, duplicates, reserved
# addresses possible), and instances take theirs from the subnet's own counter. Both now come
# from `addresses.allocate_ip`, so an instance's primary address and ENI addresses share one
# allocator.

_stock_random_private_ip = eni_models.random_private_ip


def _eni_random_private_ip(cidr=None, ipv6=False):
    # The ENI module passes only the subnet's CIDR: the subnet itself is the one patch 2
    # remembers while moto constructs the ENI.
    if ipv6 or cidr is None or _subnet_being_filled is None:
        return _stock_random_private_ip(cidr, ipv6)
    return _allocate_ip(_subnet_being_filled)


# The subnet of the ENI moto is constructing (set by patch 2).
_subnet_being_filled = None


def _get_available_subnet_ip(self, instance):
    address = _allocate_ip(self, pending=False)
    self._subnet_ips[address] = instance
    return address


# --- 2. Every ENI carries its delegated prefixes -------------------------------------------
# Stock moto has no IPv4 prefixes at all. `ipv4_prefixes` (a list of {"Ipv4Prefix": cidr}) is
# what moto's response serializer reads for DescribeNetworkInterfaces' `ipv4PrefixSet`, by
# its snake_case name. Set on every ENI as it is created, and the subnet being filled is
# remembered for patch 1 while moto constructs the ENI.

_stock_create_network_interface = eni_models.NetworkInterfaceBackend.create_network_interface


def _create_network_interface(self, subnet, *args, **kwargs):
    global _subnet_being_filled
    if isinstance(subnet, str):
        subnet = self.get_subnet(subnet)
    _subnet_being_filled = subnet
    try:
        eni = _stock_create_network_interface(self, subnet, *args, **kwargs)
    finally:
        _subnet_being_filled = None
        addresses.construction_done()
    eni.ipv4_prefixes = []
    return eni


# --- 3. AssignPrivateIpAddresses: per-ENI limit, only the new addresses, prefixes ----------
# Stock: no per-ENI limit (26 addresses on an m5.large ENI, whose limit is 10), the answer
# lists every address of the ENI (primary included) instead of the new ones, and
# Ipv4PrefixCount / Ipv4Prefix.N are ignored. EC2 counts addresses and prefixes together
# against the instance type's Ipv4AddressesPerInterface; an ENI that is not attached has no
# instance type, so no limit is checked until it is.


def _check_address_limit(eni, adding):
    if eni.instance is None:
        return
    limit = _network_info(eni.instance.instance_type).get("Ipv4AddressesPerInterface")
    have = len(eni.private_ip_addresses) + len(eni.ipv4_prefixes)
    if limit is not None and have + adding > limit:
        raise Ec2Error(
            "PrivateIpAddressLimitExceeded",
            f"Number of private addresses will exceed limit. Limit for {eni.id} is {limit}.",
        )


def _assign(eni, ips=(), ip_count=0, prefixes=(), prefix_count=0):
    """Adds addresses and prefixes to `eni` (all or none); returns the new ones."""
    have = {i["PrivateIpAddress"] for i in eni.private_ip_addresses}
    explicit = [ip for ip in ips if ip not in have]
    _check_address_limit(eni, len(explicit) + ip_count + len(prefixes) + prefix_count)
    new_ips, new_prefixes = list(explicit), list(prefixes)
    try:
        # Each allocation is stored before the next one, so they never repeat.
        for ip in explicit:
            eni.private_ip_addresses.append({"Primary": False, "PrivateIpAddress": ip})
        for _ in range(ip_count):
            ip = _allocate_ip(eni.subnet, pending=False)
            eni.private_ip_addresses.append({"Primary": False, "PrivateIpAddress": ip})
            new_ips.append(ip)
        for prefix in prefixes:
            eni.ipv4_prefixes.append({"Ipv4Prefix": prefix})
        for _ in range(prefix_count):
            prefix = _allocate_prefix(eni.subnet)
            eni.ipv4_prefixes.append({"Ipv4Prefix": prefix})
            new_prefixes.append(prefix)
    except Ec2Error:
        # EC2 assigns all or nothing.
        eni.private_ip_addresses = [
            i for i in eni.private_ip_addresses if i["PrivateIpAddress"] not in new_ips
        ]
        eni.ipv4_prefixes = [p for p in eni.ipv4_prefixes if p["Ipv4Prefix"] not in new_prefixes]
        raise
    return new_ips, new_prefixes


def _prefix_params(response):
    return [p["Ipv4Prefix"] if isinstance(p, dict) else p for p in response._get_param("Ipv4Prefixes", [])]


def _assign_private_ip_addresses(self):
    eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
    new_ips, new_prefixes = _assign(
        eni,
        ips=self._get_param("PrivateIpAddresses", []),
        ip_count=self._get_int_param("SecondaryPrivateIpAddressCount", 0),
        prefixes=_prefix_params(self),
        prefix_count=self._get_int_param("Ipv4PrefixCount", 0),
    )
    result = {
        "NetworkInterfaceId": eni.id,
        "AssignedPrivateIpAddresses": [{"PrivateIpAddress": ip} for ip in new_ips],
        "AssignedIpv4Prefixes": [{"Ipv4Prefix": p} for p in new_prefixes],
    }
    return ActionResult(result)


# --- 4. UnassignPrivateIpAddresses: Ipv4Prefix.N too --------------------------------------
# Stock: only PrivateIpAddress.N is honoured.

_stock_unassign = eni_responses.ElasticNetworkInterfaces.unassign_private_ip_addresses


def _unassign_private_ip_addresses(self):
    eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
    gone = set(_prefix_params(self))
    eni.ipv4_prefixes = [p for p in eni.ipv4_prefixes if p["Ipv4Prefix"] not in gone]
    if self._get_param("PrivateIpAddresses", []):
        return _stock_unassign(self)
    return EmptyResult()


# --- 5. CreateNetworkInterface: Ipv4PrefixCount / Ipv4Prefix.N ----------------------------
# Stock: ignored. The ENI is made by moto, then given its prefixes; if there is no room for
# them the ENI is deleted again, since EC2 would not have made it.

_stock_create_response = eni_responses.ElasticNetworkInterfaces.create_network_interface


def _create_network_interface_response(self):
    result = _stock_create_response(self)
    prefixes = _prefix_params(self)
    prefix_count = self._get_int_param("Ipv4PrefixCount", 0)
    if prefixes or prefix_count:
        eni = result.result["NetworkInterface"]
        try:
            _assign(eni, prefixes=prefixes, prefix_count=prefix_count)
        except Ec2Error:
            self.ec2_backend.enis.pop(eni.id, None)
            raise
    return result


# --- 6. AttachNetworkInterface: ENI limit and occupied device index -----------------------
# Stock: a 6th ENI attaches to an m5.large (limit 3), and an occupied device index silently
# replaces the ENI there. EC2 refuses both; the agent picks a free device index from
# DescribeInstances and stops at MaximumNetworkInterfaces.

_stock_attach = eni_models.NetworkInterfaceBackend.attach_network_interface


def _attach_network_interface(self, eni_id, instance_id, device_index):
    eni = self.get_network_interface(eni_id)
    instance = self.get_instance(instance_id)
    if eni.instance is not None:
        raise Ec2Error("InvalidNetworkInterface.InUse", f"Interface: [{eni_id}] in use.")
    if int(device_index) in instance.nics:
        raise Ec2Error(
            "InvalidParameterValue",
            f"Instance '{instance_id}' already has an interface attached at device index "
            f"'{int(device_index)}'.",
        )
    limit = _network_info(instance.instance_type).get("MaximumNetworkInterfaces")
    if limit is not None and len(instance.nics) >= limit:
        raise Ec2Error(
            "AttachmentLimitExceeded",
            f"Interface count {len(instance.nics) + 1} exceeds the limit for "
            f"{instance.instance_type}",
        )
    return _stock_attach(self, eni_id, instance_id, device_index)


# --- 7. DeleteNetworkInterface: not while attached ----------------------------------------
# Stock: an attached ENI is deleted (and vanishes from its instance's view only in part).

_stock_delete = eni_models.NetworkInterfaceBackend.delete_network_interface


def _delete_network_interface(self, eni_id):
    eni = self.enis.get(eni_id)
    if eni is not None and eni.attachment_id:
        raise Ec2Error("InvalidNetworkInterface.InUse", f"Interface: [{eni_id}] in use.")
    return _stock_delete(self, eni_id)


# --- 8. ModifyNetworkInterfaceAttribute: Attachment.DeleteOnTermination is stored ---------
# Stock: accepted and dropped, so DescribeNetworkInterfaces never shows what the agent set.
# moto's `Attachment` view reads `eni.delete_on_termination`.

_stock_modify = eni_responses.ElasticNetworkInterfaces.modify_network_interface_attribute


def _modify_network_interface_attribute(self):
    attachment = self._get_param("Attachment") or {}
    if "DeleteOnTermination" in attachment:
        eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
        if eni.attachment_id is None or attachment.get("AttachmentId") != eni.attachment_id:
            raise Ec2Error(
                "InvalidAttachmentID.NotFound",
                f"The attachment ID '{attachment.get('AttachmentId')}' does not exist",
            )
        eni.delete_on_termination = str(attachment["DeleteOnTermination"]).lower() == "true"
    return _stock_modify(self)


_applied = False


def apply():
    """Installs every patch above (idempotent)."""
    global _applied
    if _applied:
        return
    _applied = True
    eni_models.random_private_ip = _eni_random_private_ip
    subnet_models.Subnet.get_available_subnet_ip = _get_available_subnet_ip
    backend = eni_models.NetworkInterfaceBackend
    backend.create_network_interface = _create_network_interface
    backend.attach_network_interface = _attach_network_interface
    backend.delete_network_interface = _delete_network_interface
    responses = eni_responses.ElasticNetworkInterfaces
    responses.assign_private_ip_addresses = _assign_private_ip_addresses
    responses.unassign_private_ip_addresses = _unassign_private_ip_addresses
    responses.create_network_interface = _create_network_interface_response
    responses.modify_network_interface_attribute = _modify_network_interface_attribute

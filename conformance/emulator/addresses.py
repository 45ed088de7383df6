"""Private IPv4 addresses and /28 prefixes of a subnet, handed out as EC2 does.

Stock moto picks ENI addresses at random (duplicates possible, the reserved .0-.3 too). Real
EC2 never hands out the first four addresses of a subnet (network, router, DNS, future use)
nor its broadcast address, and never gives one address twice. Which free address it picks is
not documented; the lowest free one makes tests deterministic.

"In use" is read from moto's live state every time (every ENI's addresses and prefixes, and
the addresses moto's own instance allocator has claimed), so nothing here has to be told when
an address is released: unassigning it or deleting its ENI frees it. Addresses picked for an
ENI that moto is still constructing (not yet in the backend) are held in `_pending` until the
construction ends (`construction_done`).

Callers hold the emulator's state lock (see `state_lock.py`), so no two allocations race.
"""

import ipaddress

from moto.ec2.models import ec2_backends

# Addresses handed out for an ENI moto has not registered yet.
_pending = set()


class NoFreeAddress(Exception):
    """The subnet has no free address (or no free aligned /28): `code` is EC2's error code."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _all_enis():
    for regions in list(ec2_backends.values()):
        for backend in list(regions.values()):
            yield from list(getattr(backend, "enis", {}).values())


def _used(subnet):
    """Every address of `subnet` taken by an ENI address, an ENI prefix or moto's allocator."""
    net = ipaddress.ip_network(subnet.cidr_block)
    used = {ipaddress.ip_address(ip) for ip in _pending}
    used.update(ipaddress.ip_address(ip) for ip in getattr(subnet, "_subnet_ips", {}))
    for eni in _all_enis():
        for item in eni.private_ip_addresses:
            if item.get("PrivateIpAddress"):
                used.add(ipaddress.ip_address(item["PrivateIpAddress"]))
        for prefix in getattr(eni, "ipv4_prefixes", []):
            used.update(ipaddress.ip_network(prefix["Ipv4Prefix"]))
    return {a for a in used if a in net}


def _usable(net):
    """The subnet's addresses EC2 may hand out: not .0-.3, not the broadcast address."""
    first = int(net.network_address) + 4
    last = int(net.broadcast_address) - 1
    return (ipaddress.ip_address(i) for i in range(first, last + 1))


def allocate_ip(subnet, pending=True):
    """The lowest free usable address of `subnet`, reserved until the caller stores it
    (`pending`) or at once (an ENI that is already registered)."""
    used = _used(subnet)
    for address in _usable(ipaddress.ip_network(subnet.cidr_block)):
        if address not in used:
            if pending:
                _pending.add(str(address))
            return str(address)
    raise NoFreeAddress(
        "InsufficientFreeAddressesInSubnet",
        f"There are not enough free addresses in subnet '{subnet.id}' to satisfy the requested "
        "number of instances.",
    )


def allocate_prefix(subnet):
    """The lowest free /28 of `subnet` that holds no reserved address (EC2 only delegates
    aligned /28s whose every address is free)."""
    net = ipaddress.ip_network(subnet.cidr_block)
    used = _used(subnet)
    reserved = {ipaddress.ip_address(int(net.network_address) + i) for i in range(4)}
    reserved.add(net.broadcast_address)
    for prefix in net.subnets(new_prefix=28) if net.prefixlen <= 28 else []:
        if not any(a in used or a in reserved for a in prefix):
            return str(prefix)
    raise NoFreeAddress(
        "InsufficientCidrBlocks",
        f"There are not enough free cidr blocks in the specified subnet '{subnet.id}' to "
        "satisfy the request.",
    )


def construction_done():
    """Forgets the pending addresses: the ENI they were for is registered (or was not made)."""
    _pending.clear()

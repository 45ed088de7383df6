"""Reads the emulator's answers with an AWS SDK (boto3, in the suite's virtualenv as a
dependency of moto), so that their XML is checked against EC2's own API model, not only
against the element names tests/ec2_emulator.rs looks for.

    python ec2_emulator_boto3.py EC2_URL IMDS_URL SUBNET_ID INSTANCE_ID

The node (t3.medium) is seeded by the caller. Exits non-zero on the first failed check.
The last check makes the caller's emulator throttle two calls: the SDK must retry them as it
retries EC2's own RequestLimitExceeded.
"""

import json
import sys
import urllib.request

import boto3
import botocore.config
import botocore.exceptions

ec2_url, imds_url, subnet, instance = sys.argv[1:5]
ec2 = boto3.client(
    "ec2",
    region_name="us-west-2",
    endpoint_url=ec2_url,
    aws_access_key_id="test",
    aws_secret_access_key="test",
    config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 4}),
)


def code_of(call, **params):
    try:
        call(**params)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return None


eni = ec2.create_network_interface(SubnetId=subnet, SecondaryPrivateIpAddressCount=1)
eni_id = eni["NetworkInterface"]["NetworkInterfaceId"]
addresses = [a["PrivateIpAddress"] for a in eni["NetworkInterface"]["PrivateIpAddresses"]]
assert addresses == ["10.0.1.5", "10.0.1.6"], addresses

attached = ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance, DeviceIndex=1)
ec2.modify_network_interface_attribute(
    NetworkInterfaceId=eni_id,
    Attachment={"AttachmentId": attached["AttachmentId"], "DeleteOnTermination": True},
)

assigned = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_id, SecondaryPrivateIpAddressCount=2)
new = [a["PrivateIpAddress"] for a in assigned["AssignedPrivateIpAddresses"]]
assert new == ["10.0.1.7", "10.0.1.8"], assigned
prefixes = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_id, Ipv4PrefixCount=1)
assert prefixes["AssignedIpv4Prefixes"] == [{"Ipv4Prefix": "10.0.1.16/28"}], prefixes

described = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
assert described["Ipv4Prefixes"] == [{"Ipv4Prefix": "10.0.1.16/28"}], described
assert described["Attachment"]["DeleteOnTermination"] is True, described
assert described["Attachment"]["DeviceIndex"] == 1, described

# t3.medium: 6 addresses per ENI (4 addresses and a prefix so far), 3 ENIs.
over = code_of(ec2.assign_private_ip_addresses, NetworkInterfaceId=eni_id, SecondaryPrivateIpAddressCount=2)
assert over == "PrivateIpAddressLimitExceeded", over
taken = code_of(ec2.attach_network_interface, NetworkInterfaceId=eni_id, InstanceId=instance, DeviceIndex=2)
assert taken == "InvalidNetworkInterface.InUse", taken
in_use = code_of(ec2.delete_network_interface, NetworkInterfaceId=eni_id)
assert in_use == "InvalidNetworkInterface.InUse", in_use

limits = ec2.describe_instance_types(InstanceTypes=["t3.medium"])["InstanceTypes"][0]["NetworkInfo"]
assert (limits["MaximumNetworkInterfaces"], limits["Ipv4AddressesPerInterface"]) == (3, 6), limits

# Throttled twice, then answered: the SDK's retries absorb it.
request = urllib.request.Request(
    ec2_url + "/_emulator/faults",
    method="POST",
    data=json.dumps({"action": "DescribeInstances", "code": "RequestLimitExceeded", "count": 2}).encode(),
    headers={"Content-Type": "application/json"},
)
urllib.request.urlopen(request).close()
reservations = ec2.describe_instances(InstanceIds=[instance])["Reservations"]
assert reservations[0]["Instances"][0]["InstanceId"] == instance, reservations

print("ok")

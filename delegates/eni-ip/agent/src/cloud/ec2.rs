//! The EC2 calls of ipamd (`pkg/awsutils/awsutils.go`), one method each.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_ec2::types::{
    InstanceType, NetworkInterface, NetworkInterfaceAttachmentChanges, NetworkInterfaceType,
    ResourceType, Tag, TagSpecification,
};
use eni_ip::warm_pool::CidrKind;
use eni_ip::InstanceLimits;
use ipnet::Ipv4Net;

use super::{Cloud, CloudError};
use crate::node::{EniFacts, NodeInfo};

/// The tag that keeps an ENI out of the agent's hands.
const NO_MANAGE_TAG: &str = "node.k8s.amazonaws.com/no_manage";
/// Device indexes EC2 accepts (`awsGetFreeDeviceNumber` walks 0..99).
const MAX_DEVICE_INDEX: u32 = 100;

/// An ENI created by [`Cloud::create_eni`], not yet attached.
#[derive(Debug, Clone)]
pub struct CreatedEni {
    /// Its facts (device index 0 until attached).
    pub facts: EniFacts,
}

fn parse_ip(api: &'static str, value: &str) -> Result<Ipv4Addr, CloudError> {
    value.parse().map_err(|_| CloudError::Malformed {
        what: format!("EC2 {api} address"),
        value: value.to_string(),
    })
}

fn parse_net(api: &'static str, value: &str) -> Result<Ipv4Net, CloudError> {
    value.parse().map_err(|_| CloudError::Malformed {
        what: format!("EC2 {api} prefix"),
        value: value.to_string(),
    })
}

fn i32_of(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// An EC2 `NetworkInterface` as the agent keeps it. `subnet` is the node's subnet CIDR:
/// EC2's answer names the subnet only by id, and every managed ENI is created there.
fn facts(
    api: &'static str,
    ni: &NetworkInterface,
    subnet: Ipv4Net,
) -> Result<EniFacts, CloudError> {
    let id = ni
        .network_interface_id()
        .ok_or(CloudError::MissingField {
            api,
            field: "networkInterfaceId",
        })?
        .to_string();
    let mut primary_ip = None;
    let mut secondary_ips = Vec::new();
    for a in ni.private_ip_addresses() {
        let Some(ip) = a.private_ip_address() else {
            continue;
        };
        let ip = parse_ip(api, ip)?;
        if a.primary() == Some(true) {
            primary_ip = Some(ip);
        } else {
            secondary_ips.push(ip);
        }
    }
    let prefixes = ni
        .ipv4_prefixes()
        .iter()
        .filter_map(|p| p.ipv4_prefix())
        .map(|p| parse_net(api, p))
        .collect::<Result<_, _>>()?;
    let attachment = ni.attachment();
    let attached_at = attachment.and_then(|a| a.attach_time()).and_then(|t| {
        let secs = u64::try_from(t.secs()).ok()?;
        Some(UNIX_EPOCH + std::time::Duration::new(secs, t.subsec_nanos()))
    });
    Ok(EniFacts {
        id,
        mac: ni.mac_address().unwrap_or_default().to_string(),
        device_index: attachment
            .and_then(|a| a.device_index())
            .and_then(|d| u32::try_from(d).ok())
            .unwrap_or(0),
        subnet,
        primary_ip,
        secondary_ips,
        prefixes,
        attachment_id: attachment
            .and_then(|a| a.attachment_id())
            .map(str::to_owned),
        attached_at,
        trunk: ni.interface_type() == Some(&NetworkInterfaceType::Trunk),
        // `efa` and `efa-only`.
        efa: ni
            .interface_type()
            .is_some_and(|t| t.as_str().starts_with("efa")),
        no_manage: ni
            .tag_set()
            .iter()
            .any(|t| t.key() == Some(NO_MANAGE_TAG) && t.value() == Some("true")),
    })
}

impl Cloud {
    /// `DescribeInstanceTypes`: the type's ENI and address limits, and its vCPUs.
    pub async fn instance_limits(
        &self,
        instance_type: &str,
    ) -> Result<(InstanceLimits, u32), CloudError> {
        const API: &str = "DescribeInstanceTypes";
        let out = self
            .ec2_call(
                API,
                self.ec2
                    .describe_instance_types()
                    .instance_types(InstanceType::from(instance_type))
                    .send(),
            )
            .await?;
        let info = out
            .instance_types()
            .first()
            .ok_or(CloudError::MissingField {
                api: API,
                field: "instanceTypeSet",
            })?;
        let net = info.network_info().ok_or(CloudError::MissingField {
            api: API,
            field: "networkInfo",
        })?;
        let positive = |v: Option<i32>, field| {
            v.and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or(CloudError::MissingField { api: API, field })
        };
        let limits = InstanceLimits {
            max_enis: positive(net.maximum_network_interfaces(), "maximumNetworkInterfaces")?,
            ipv4_per_eni: positive(
                net.ipv4_addresses_per_interface(),
                "ipv4AddressesPerInterface",
            )?,
        };
        let vcpus = info
            .v_cpu_info()
            .and_then(|v| v.default_v_cpus())
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0);
        Ok((limits, vcpus))
    }

    /// `DescribeNetworkInterfaces` of these ENIs (EC2's view confirms IMDS's).
    pub async fn describe_enis(
        &self,
        ids: &[String],
        subnet: Ipv4Net,
    ) -> Result<Vec<EniFacts>, CloudError> {
        const API: &str = "DescribeNetworkInterfaces";
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .ec2_call(
                API,
                self.ec2
                    .describe_network_interfaces()
                    .set_network_interface_ids(Some(ids.to_vec()))
                    .send(),
            )
            .await?;
        out.network_interfaces()
            .iter()
            .map(|ni| facts(API, ni, subnet))
            .collect()
    }

    /// `DescribeInstances`: the first device index no attachment of the node uses
    /// (`awsGetFreeDeviceNumber`).
    pub async fn free_device_index(&self, instance_id: &str) -> Result<u32, CloudError> {
        const API: &str = "DescribeInstances";
        let out = self
            .ec2_call(
                API,
                self.ec2
                    .describe_instances()
                    .instance_ids(instance_id)
                    .send(),
            )
            .await?;
        let used: BTreeSet<u32> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .flat_map(|i| i.network_interfaces())
            .filter_map(|ni| ni.attachment()?.device_index())
            .filter_map(|d| u32::try_from(d).ok())
            .collect();
        (0..MAX_DEVICE_INDEX)
            .find(|d| !used.contains(d))
            .ok_or(CloudError::MissingField {
                api: API,
                field: "a free device index",
            })
    }

    /// `CreateNetworkInterface` in the node's subnet with its security groups, the
    /// `aws-K8S-<instance-id>` description and ipamd's tags, with `count` blocks of `kind`.
    pub async fn create_eni(
        &self,
        node: &NodeInfo,
        count: u32,
        kind: CidrKind,
    ) -> Result<CreatedEni, CloudError> {
        const API: &str = "CreateNetworkInterface";
        let created_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::NetworkInterface)
            .tags(tag("node.k8s.amazonaws.com/instance_id", &node.instance_id))
            .tags(tag(
                "node.k8s.amazonaws.com/createdAt",
                &created_at.to_string(),
            ))
            .tags(tag("eks:eni:owner", "amazon-vpc-cni"))
            .build();
        let mut request = self
            .ec2
            .create_network_interface()
            .subnet_id(&node.subnet_id)
            .set_groups(Some(node.security_groups.clone()))
            .description(format!("aws-K8S-{}", node.instance_id))
            .tag_specifications(tags);
        request = match kind {
            CidrKind::SecondaryIps if count > 0 => {
                request.secondary_private_ip_address_count(i32_of(count))
            }
            CidrKind::Prefixes if count > 0 => request.ipv4_prefix_count(i32_of(count)),
            _ => request,
        };
        let out = self.ec2_call(API, request.send()).await?;
        let ni = out.network_interface().ok_or(CloudError::MissingField {
            api: API,
            field: "networkInterface",
        })?;
        Ok(CreatedEni {
            facts: facts(API, ni, node.subnet_cidr)?,
        })
    }

    /// `AttachNetworkInterface` at `device_index`; the attachment id.
    pub async fn attach_eni(
        &self,
        eni_id: &str,
        instance_id: &str,
        device_index: u32,
    ) -> Result<String, CloudError> {
        const API: &str = "AttachNetworkInterface";
        let out = self
            .ec2_call(
                API,
                self.ec2
                    .attach_network_interface()
                    .network_interface_id(eni_id)
                    .instance_id(instance_id)
                    .device_index(i32_of(device_index))
                    .network_card_index(0)
                    .send(),
            )
            .await?;
        out.attachment_id()
            .map(str::to_owned)
            .ok_or(CloudError::MissingField {
                api: API,
                field: "attachmentId",
            })
    }

    /// `ModifyNetworkInterfaceAttribute`: the ENI goes with the instance.
    pub async fn set_delete_on_termination(
        &self,
        eni_id: &str,
        attachment_id: &str,
    ) -> Result<(), CloudError> {
        let change = NetworkInterfaceAttachmentChanges::builder()
            .attachment_id(attachment_id)
            .delete_on_termination(true)
            .build();
        self.ec2_call(
            "ModifyNetworkInterfaceAttribute",
            self.ec2
                .modify_network_interface_attribute()
                .network_interface_id(eni_id)
                .attachment(change)
                .send(),
        )
        .await
        .map(|_| ())
    }

    /// `AssignPrivateIpAddresses` of `count` secondary IPs or prefixes: the new blocks.
    pub async fn assign(
        &self,
        eni_id: &str,
        count: u32,
        kind: CidrKind,
    ) -> Result<Vec<Ipv4Net>, CloudError> {
        const API: &str = "AssignPrivateIpAddresses";
        let request = self
            .ec2
            .assign_private_ip_addresses()
            .network_interface_id(eni_id);
        let request = match kind {
            CidrKind::SecondaryIps => request.secondary_private_ip_address_count(i32_of(count)),
            CidrKind::Prefixes => request.ipv4_prefix_count(i32_of(count)),
        };
        let out = self.ec2_call(API, request.send()).await?;
        let mut blocks = Vec::new();
        for a in out.assigned_private_ip_addresses() {
            if let Some(ip) = a.private_ip_address() {
                blocks.push(Ipv4Net::from(parse_ip(API, ip)?));
            }
        }
        for p in out.assigned_ipv4_prefixes() {
            if let Some(p) = p.ipv4_prefix() {
                blocks.push(parse_net(API, p)?);
            }
        }
        Ok(blocks)
    }

    /// `UnassignPrivateIpAddresses` of these blocks (/32s as addresses, /28s as prefixes).
    pub async fn unassign(&self, eni_id: &str, blocks: &[Ipv4Net]) -> Result<(), CloudError> {
        let mut request = self
            .ec2
            .unassign_private_ip_addresses()
            .network_interface_id(eni_id);
        for block in blocks {
            request = if block.prefix_len() == 32 {
                request.private_ip_addresses(block.addr().to_string())
            } else {
                request.ipv4_prefixes(block.to_string())
            };
        }
        self.ec2_call("UnassignPrivateIpAddresses", request.send())
            .await
            .map(|_| ())
    }

    /// `DetachNetworkInterface`.
    pub async fn detach(&self, attachment_id: &str) -> Result<(), CloudError> {
        self.ec2_call(
            "DetachNetworkInterface",
            self.ec2
                .detach_network_interface()
                .attachment_id(attachment_id)
                .send(),
        )
        .await
        .map(|_| ())
    }

    /// `DeleteNetworkInterface`.
    pub async fn delete_eni(&self, eni_id: &str) -> Result<(), CloudError> {
        self.ec2_call(
            "DeleteNetworkInterface",
            self.ec2
                .delete_network_interface()
                .network_interface_id(eni_id)
                .send(),
        )
        .await
        .map(|_| ())
    }
}

//! The node and its attached ENIs from IMDS (IMDSv2: the SDK's client fetches and renews the
//! session token), as `pkg/awsutils/imds.go` reads them. A 404 means "none".

use std::net::Ipv4Addr;
use std::str::FromStr;

use aws_config::imds::client::error::ImdsError;
use aws_config::provider_config::ProviderConfig;
use aws_sdk_ec2::config::SharedHttpClient;
use ipnet::Ipv4Net;

use super::{Cloud, CloudError, CloudOptions};
use crate::node::{EniFacts, NodeInfo};

const IDENTITY_DOCUMENT: &str = "/latest/dynamic/instance-identity/document";
const MACS: &str = "/latest/meta-data/network/interfaces/macs/";

pub(super) fn client(
    options: &CloudOptions,
    http: SharedHttpClient,
) -> Result<aws_config::imds::Client, CloudError> {
    let mut builder = aws_config::imds::Client::builder()
        .configure(&ProviderConfig::without_region().with_http_client(http));
    if let Some(url) = &options.imds_endpoint {
        builder = builder.endpoint(url).map_err(|_| CloudError::Malformed {
            what: "AWS_EC2_METADATA_SERVICE_ENDPOINT".into(),
            value: url.clone(),
        })?;
    }
    Ok(builder.build())
}

async fn get(imds: &aws_config::imds::Client, path: &str) -> Result<Option<String>, CloudError> {
    match imds.get(path).await {
        Ok(value) => Ok(Some(String::from(value))),
        Err(ImdsError::ErrorResponse(e)) if e.response().status().as_u16() == 404 => Ok(None),
        Err(source) => Err(CloudError::Imds {
            path: path.to_string(),
            source: Box::new(source),
        }),
    }
}

/// The region in the instance-identity document (what the Go SDK's `GetRegion` reads).
pub(super) async fn region_from_identity(
    imds: &aws_config::imds::Client,
) -> Result<String, CloudError> {
    let doc = get(imds, IDENTITY_DOCUMENT)
        .await?
        .ok_or_else(|| CloudError::ImdsMissing {
            path: IDENTITY_DOCUMENT.into(),
        })?;
    let value: serde_json::Value =
        serde_json::from_str(&doc).map_err(|_| CloudError::Malformed {
            what: IDENTITY_DOCUMENT.into(),
            value: doc.clone(),
        })?;
    value["region"]
        .as_str()
        .map(str::to_owned)
        .ok_or(CloudError::Malformed {
            what: format!("{IDENTITY_DOCUMENT} region"),
            value: doc,
        })
}

fn parse<T: FromStr>(what: &str, value: &str) -> Result<T, CloudError> {
    value.trim().parse().map_err(|_| CloudError::Malformed {
        what: what.to_string(),
        value: value.to_string(),
    })
}

fn lines(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().trim_end_matches('/').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

impl Cloud {
    async fn meta(&self, key: &str) -> Result<Option<String>, CloudError> {
        get(&self.imds, &format!("/latest/meta-data/{key}")).await
    }

    async fn meta_required(&self, key: &str) -> Result<String, CloudError> {
        self.meta(key)
            .await?
            .ok_or_else(|| CloudError::ImdsMissing {
                path: format!("/latest/meta-data/{key}"),
            })
    }

    /// The node: identity, primary ENI, subnet, VPC CIDRs and security groups.
    pub async fn node_from_imds(&self, region: &str) -> Result<NodeInfo, CloudError> {
        let mac = self.meta_required("mac").await?;
        let eni = |field: &str| format!("network/interfaces/macs/{mac}/{field}");
        let vpc_cidrs = lines(self.meta(&eni("vpc-ipv4-cidr-blocks")).await?)
            .iter()
            .map(|c| parse::<Ipv4Net>("vpc-ipv4-cidr-blocks", c))
            .collect::<Result<_, _>>()?;
        Ok(NodeInfo {
            instance_id: self.meta_required("instance-id").await?,
            instance_type: self.meta_required("instance-type").await?,
            availability_zone: self.meta_required("placement/availability-zone").await?,
            region: region.to_string(),
            primary_eni_id: self.meta_required(&eni("interface-id")).await?,
            primary_ip: parse("local-ipv4", &self.meta_required("local-ipv4").await?)?,
            subnet_id: self.meta_required(&eni("subnet-id")).await?,
            subnet_cidr: parse(
                "subnet-ipv4-cidr-block",
                &self.meta_required(&eni("subnet-ipv4-cidr-block")).await?,
            )?,
            vpc_id: self.meta_required(&eni("vpc-id")).await?,
            vpc_cidrs,
            security_groups: lines(self.meta(&eni("security-group-ids")).await?),
            primary_mac: mac,
        })
    }

    /// The attached ENIs as IMDS lists them, by MAC: `local-ipv4s` has the ENI's own
    /// address first, then its secondaries.
    pub async fn enis_from_imds(&self) -> Result<Vec<EniFacts>, CloudError> {
        let macs = lines(get(&self.imds, MACS).await?);
        let mut enis = Vec::with_capacity(macs.len());
        for mac in macs {
            let field = |name: &str| format!("network/interfaces/macs/{mac}/{name}");
            let Some(id) = self.meta(&field("interface-id")).await? else {
                // Detached between the listing and this read.
                continue;
            };
            let device = self.meta_required(&field("device-number")).await?;
            let subnet = self.meta_required(&field("subnet-ipv4-cidr-block")).await?;
            let ips: Vec<Ipv4Addr> = lines(self.meta(&field("local-ipv4s")).await?)
                .iter()
                .map(|ip| parse("local-ipv4s", ip))
                .collect::<Result<_, _>>()?;
            let prefixes = lines(self.meta(&field("ipv4-prefix")).await?)
                .iter()
                .map(|p| parse("ipv4-prefix", p))
                .collect::<Result<_, _>>()?;
            enis.push(EniFacts {
                id,
                device_index: parse("device-number", &device)?,
                subnet: parse("subnet-ipv4-cidr-block", &subnet)?,
                primary_ip: ips.first().copied(),
                secondary_ips: ips.iter().skip(1).copied().collect(),
                prefixes,
                mac,
                attachment_id: None,
                attached_at: None,
                trunk: false,
                efa: false,
                no_manage: false,
            });
        }
        enis.sort_by_key(|e| e.device_index);
        Ok(enis)
    }
}

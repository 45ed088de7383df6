//! The seam between the agent and the cloud: EC2 and IMDS through the official SDK. Every
//! call is counted and timed in the metrics, and every failure names the call and the AWS
//! error code the pool logic branches on.

mod ec2;
mod http_client;
mod imds;

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use aws_config::imds::client::error::ImdsError;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::metrics::Metrics;

pub use ec2::CreatedEni;

/// EC2's code for throttling.
pub const REQUEST_LIMIT_EXCEEDED: &str = "RequestLimitExceeded";
/// The subnet has no free address: stop growing for the insufficient-CIDR cooldown.
pub const INSUFFICIENT_FREE_ADDRESSES: &str = "InsufficientFreeAddressesInSubnet";
/// The subnet has no free /28: stop growing for the insufficient-CIDR cooldown.
pub const INSUFFICIENT_CIDR_BLOCKS: &str = "InsufficientCidrBlocks";
/// The ENI is full: re-read it from EC2.
pub const PRIVATE_IP_LIMIT_EXCEEDED: &str = "PrivateIpAddressLimitExceeded";
/// The ENI (or attachment) is gone: freeing it counts as done.
pub const ENI_NOT_FOUND: &str = "InvalidNetworkInterfaceID.NotFound";
/// The attachment is gone.
pub const ATTACHMENT_NOT_FOUND: &str = "InvalidAttachmentID.NotFound";

/// A cloud call failed.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// An EC2 call failed (after the SDK's retries).
    #[error("EC2 {api}: {}: {message}", code.as_deref().unwrap_or("no error code"))]
    Ec2 {
        /// The operation.
        api: &'static str,
        /// AWS's error code, when EC2 answered with one.
        code: Option<String>,
        /// The error with its causes.
        message: String,
        /// The SDK's error.
        #[source]
        source: Box<aws_sdk_ec2::Error>,
    },
    /// An IMDS read failed.
    #[error("IMDS GET {path}: {source}")]
    Imds {
        /// The metadata path.
        path: String,
        /// The client's error (boxed: it is large, and failures are rare).
        #[source]
        source: Box<ImdsError>,
    },
    /// IMDS has no value where the agent needs one.
    #[error("IMDS GET {path}: not found")]
    ImdsMissing {
        /// The metadata path.
        path: String,
    },
    /// A value from IMDS or EC2 does not parse.
    #[error("{what}: cannot parse {value:?}")]
    Malformed {
        /// Which value.
        what: String,
        /// What it was.
        value: String,
    },
    /// An EC2 answer lacks a field the agent needs.
    #[error("EC2 {api}: the answer has no {field}")]
    MissingField {
        /// The operation.
        api: &'static str,
        /// The field.
        field: &'static str,
    },
}

impl CloudError {
    /// AWS's error code, if EC2 gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CloudError::Ec2 { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The subnet is out of addresses or /28s (`InsufficientFreeAddressesInSubnet`,
    /// `InsufficientCidrBlocks`).
    pub fn is_insufficient_cidr(&self) -> bool {
        matches!(
            self.code(),
            Some(INSUFFICIENT_FREE_ADDRESSES | INSUFFICIENT_CIDR_BLOCKS)
        )
    }

    /// The thing acted on is already gone.
    pub fn is_not_found(&self) -> bool {
        matches!(self.code(), Some(ENI_NOT_FOUND | ATTACHMENT_NOT_FOUND))
    }
}

/// Where the cloud is and how hard to retry; read from the environment by the settings.
#[derive(Debug, Clone, Default)]
pub struct CloudOptions {
    /// The region (`AWS_REGION`); `None`: the instance-identity document's.
    pub region: Option<String>,
    /// EC2's endpoint (`AWS_EC2_ENDPOINT`, upstream's override); `None`: the SDK's
    /// resolution (which honours `AWS_ENDPOINT_URL_EC2`).
    pub ec2_endpoint: Option<String>,
    /// IMDS's endpoint (`AWS_EC2_METADATA_SERVICE_ENDPOINT`).
    pub imds_endpoint: Option<String>,
    /// Attempts per EC2 call, the first included (the SDK's standard retry mode retries
    /// throttling, 5xx and transient errors with jittered exponential backoff).
    pub ec2_max_attempts: u32,
}

/// EC2 and IMDS for one node.
#[derive(Debug, Clone)]
pub struct Cloud {
    region: String,
    ec2: aws_sdk_ec2::Client,
    imds: aws_config::imds::Client,
    metrics: Arc<Metrics>,
}

impl Cloud {
    /// Builds the clients: IMDS first (the region may come from it), then EC2.
    pub async fn connect(
        options: &CloudOptions,
        metrics: Arc<Metrics>,
    ) -> Result<Self, CloudError> {
        let http = http_client::https_client();
        let imds = imds::client(options, http.clone())?;
        let region = match &options.region {
            Some(region) => region.clone(),
            None => imds::region_from_identity(&imds).await?,
        };
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new(region.clone()))
            .retry_config(
                RetryConfig::standard().with_max_attempts(options.ec2_max_attempts.max(1)),
            )
            .load()
            .await;
        let mut config = aws_sdk_ec2::config::Builder::from(&sdk);
        if let Some(url) = &options.ec2_endpoint {
            config = config.endpoint_url(url);
        }
        Ok(Cloud {
            region,
            ec2: aws_sdk_ec2::Client::from_conf(config.build()),
            imds,
            metrics,
        })
    }

    /// The region EC2 is called in.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Runs one EC2 call, recording it in the metrics and naming it in its error.
    async fn ec2_call<T, E, F>(&self, api: &'static str, call: F) -> Result<T, CloudError>
    where
        F: Future<Output = Result<T, SdkError<E, aws_sdk_ec2::config::http::HttpResponse>>>,
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        aws_sdk_ec2::Error: From<SdkError<E, aws_sdk_ec2::config::http::HttpResponse>>,
    {
        let started = Instant::now();
        let result = call.await;
        let took = started.elapsed();
        match result {
            Ok(out) => {
                self.metrics.ec2_call(api, took, None);
                tracing::debug!(api, took_ms = took.as_millis() as u64, "EC2 call");
                Ok(out)
            }
            Err(err) => {
                let code = err.code().map(str::to_owned);
                let message = DisplayErrorContext(&err).to_string();
                self.metrics
                    .ec2_call(api, took, Some(code.as_deref().unwrap_or("unknown")));
                tracing::warn!(api, code = code.as_deref(), %message, "EC2 call failed");
                Err(CloudError::Ec2 {
                    api,
                    code,
                    message,
                    source: Box::new(err.into()),
                })
            }
        }
    }
}

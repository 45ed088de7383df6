//! The one mapping of the meta plugin's errors to CNI errors: the code of every variant, and
//! the `details` that go with its `msg` (the variant's `Display`). A variant that holds a
//! delegate's or the cni crate's `cni::Error` keeps that error's code and details.

use std::fmt::Display;

use cni::{Error, ErrorCode};

use super::*;

/// A typed error's CNI code and details; its `Display` is the message.
trait Coded: Display {
    /// The CNI error code.
    fn code(&self) -> ErrorCode;
    /// Why it failed, or what to do.
    fn details(&self) -> String;
}

/// `e` as a CNI error.
fn cni_error(e: &impl Coded) -> Error {
    Error::new(e.code(), e.to_string(), e.details())
}

macro_rules! into_cni_error {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                cni_error(&e)
            }
        }
    )*};
}

into_cni_error!(
    ConfigError,
    DeviceError,
    CacheError,
    LockError,
    NadFileError,
    ApiError,
    SourceError,
    NetworkError,
    PlanError,
    AttachmentError,
    DefaultRouteError,
    MetaError,
);

impl Coded for ConfigError {
    fn code(&self) -> ErrorCode {
        match self {
            ConfigError::Field { source } => source.code,
            ConfigError::NoClusterNetwork
            | ConfigError::Invalid { .. }
            | ConfigError::List { .. } => ErrorCode::INVALID_NETWORK_CONFIG,
        }
    }

    fn details(&self) -> String {
        match self {
            ConfigError::Field { source } => source.details.clone(),
            ConfigError::NoClusterNetwork => {
                "set clusterNetwork (a NAD name, a file or a directory) or delegates".into()
            }
            ConfigError::Invalid { why, .. } => why.clone(),
            ConfigError::List { source, .. } => source.to_string(),
        }
    }
}

impl Coded for CacheError {
    fn code(&self) -> ErrorCode {
        match self {
            CacheError::NameTooLong { .. } => ErrorCode::INVALID_ENVIRONMENT,
            CacheError::Encode { .. } => ErrorCode::INTERNAL,
            CacheError::CreateDir { .. }
            | CacheError::CreateFile { .. }
            | CacheError::Write { .. }
            | CacheError::Replace { .. }
            | CacheError::Read { .. }
            | CacheError::Remove { .. } => ErrorCode::IO_FAILURE,
        }
    }

    fn details(&self) -> String {
        match self {
            CacheError::NameTooLong { len, max } => {
                format!("the cache file name would be {len} bytes; at most {max} fit")
            }
            CacheError::Encode { source } => source.to_string(),
            CacheError::CreateDir { source, .. }
            | CacheError::CreateFile { source, .. }
            | CacheError::Write { source, .. }
            | CacheError::Replace { source, .. }
            | CacheError::Read { source, .. }
            | CacheError::Remove { source, .. } => source.to_string(),
        }
    }
}

impl Coded for LockError {
    fn code(&self) -> ErrorCode {
        match self {
            LockError::Dir(e) => e.code(),
            LockError::Open { .. } | LockError::Lock { .. } => ErrorCode::IO_FAILURE,
        }
    }

    fn details(&self) -> String {
        match self {
            LockError::Dir(e) => e.details(),
            LockError::Open { source, .. } | LockError::Lock { source, .. } => source.to_string(),
        }
    }
}

impl Coded for NadFileError {
    fn code(&self) -> ErrorCode {
        match self {
            // A NAD file is configuration: one that is not the NAD it should be is code 7.
            NadFileError::InvalidRef { .. } | NadFileError::Refused { .. } => {
                ErrorCode::INVALID_NETWORK_CONFIG
            }
            NadFileError::NotYaml { .. } => ErrorCode::DECODING_FAILURE,
            NadFileError::Open { .. }
            | NadFileError::Stat { .. }
            | NadFileError::Read { .. }
            | NadFileError::ReadDir { .. } => ErrorCode::IO_FAILURE,
        }
    }

    fn details(&self) -> String {
        match self {
            NadFileError::InvalidRef { why, .. } => why.to_string(),
            NadFileError::Open { source, .. }
            | NadFileError::Stat { source, .. }
            | NadFileError::Read { source, .. }
            | NadFileError::ReadDir { source, .. } => source.to_string(),
            NadFileError::NotYaml { at, .. } => match at {
                Some((line, column)) => {
                    format!("it does not parse at line {line}, column {column}")
                }
                None => "it does not parse".into(),
            },
            NadFileError::Refused { why, .. } => why.to_string(),
        }
    }
}

impl Coded for ApiError {
    fn code(&self) -> ErrorCode {
        match self {
            ApiError::Runtime { .. } => ErrorCode::INTERNAL,
            // The environment names the API server: a bad port there is the environment's.
            ApiError::Config(
                KubeConfigError::MissingVariable { .. } | KubeConfigError::InvalidVariable { .. },
            ) => ErrorCode::INVALID_ENVIRONMENT,
            ApiError::Config(_) | ApiError::Client { .. } => ErrorCode::INVALID_NETWORK_CONFIG,
            ApiError::Refused { .. } | ApiError::Failed { .. } | ApiError::Tls { .. } => {
                ErrorCode::KUBERNETES_API
            }
            ApiError::Decode { .. } => ErrorCode::DECODING_FAILURE,
            ApiError::GaveUp { .. } => ErrorCode::TRY_AGAIN_LATER,
            ApiError::PodGone { .. } => ErrorCode::UNKNOWN_CONTAINER,
        }
    }

    fn details(&self) -> String {
        match self {
            ApiError::Runtime { source } => source.to_string(),
            ApiError::Config(e) => match e {
                KubeConfigError::Kubeconfig { source, .. }
                | KubeConfigError::InCluster { source, .. } => source.to_string(),
                KubeConfigError::ServiceAccountFile { source, .. } => source.to_string(),
                KubeConfigError::MissingVariable { .. } => {
                    format!(
                        "it is set with {}",
                        crate::meta::kube_config::SERVICE_HOST_ENV
                    )
                }
                KubeConfigError::InvalidVariable { .. } => "a number from 1 to 65535".into(),
            },
            ApiError::Tls { server, why, .. } => {
                format!("{why} (is the CA configured for {server} the one that signed its certificate?)")
            }
            ApiError::Client { source, .. } | ApiError::Failed { source, .. } => source.to_string(),
            ApiError::Refused { message, .. } => message.clone(),
            ApiError::Decode { source, .. } => source.to_string(),
            ApiError::GaveUp { last, .. } => last.to_string(),
            ApiError::PodGone { what, .. } => format!("{what}: 404 Not Found"),
        }
    }
}

impl Coded for SourceError {
    fn code(&self) -> ErrorCode {
        match self {
            SourceError::Api(e) => e.code(),
            SourceError::NadFile(e) => e.code(),
            SourceError::PodName { .. } => ErrorCode::INVALID_NETWORK_CONFIG,
            // Multus "succeeds" with a fake result; the runtime is better told the truth.
            SourceError::PodGone { .. } => ErrorCode::UNKNOWN_CONTAINER,
        }
    }

    fn details(&self) -> String {
        match self {
            SourceError::Api(e) => e.details(),
            SourceError::NadFile(e) => e.details(),
            SourceError::PodName { why, .. } => why.to_string(),
            SourceError::PodGone { why } => why.clone(),
        }
    }
}

impl Coded for NetworkError {
    fn code(&self) -> ErrorCode {
        match self {
            NetworkError::Source(e) => e.code(),
            NetworkError::Conf { source, .. } => source.code,
            NetworkError::ReadConfDir { .. }
            | NetworkError::ReadDir { .. }
            | NetworkError::ReadFile { .. } => ErrorCode::IO_FAILURE,
            NetworkError::Decode { .. } | NetworkError::NotAnObject { .. } => {
                ErrorCode::DECODING_FAILURE
            }
            NetworkError::NadConfig { .. }
            | NetworkError::EmptyNad { .. }
            | NetworkError::EmptyDirectory { .. }
            | NetworkError::NotFound { .. } => ErrorCode::INVALID_NETWORK_CONFIG,
        }
    }

    fn details(&self) -> String {
        match self {
            NetworkError::Source(e) => e.details(),
            NetworkError::Conf { source, .. } => source.details.clone(),
            NetworkError::ReadConfDir { source, .. }
            | NetworkError::ReadDir { source, .. }
            | NetworkError::ReadFile { source, .. } => source.to_string(),
            NetworkError::Decode { source, .. } => source.to_string(),
            NetworkError::NotAnObject { .. } => "not a JSON object".into(),
            NetworkError::NadConfig { source, .. } => source.to_string(),
            NetworkError::EmptyNad { conf_dir, .. } => {
                format!("looked in {}", conf_dir.display())
            }
            NetworkError::EmptyDirectory { .. } => String::new(),
            NetworkError::NotFound {
                name,
                namespace,
                looked,
                conf_dir,
            } => format!(
                "no NAD {namespace}/{name} ({looked}) and no config named {name:?} in {}",
                conf_dir.display()
            ),
        }
    }
}

impl Coded for DeviceError {
    fn code(&self) -> ErrorCode {
        match self {
            DeviceError::NoPod { .. }
            | DeviceError::Exhausted { .. }
            | DeviceError::ClaimMissing { .. } => ErrorCode::INVALID_NETWORK_CONFIG,
            // The kubelet may be restarting, the scheduler not done: the runtime retries.
            DeviceError::Unavailable { .. } | DeviceError::ClaimUnallocated { .. } => {
                ErrorCode::TRY_AGAIN_LATER
            }
            DeviceError::Claim { source, .. } => source.code(),
        }
    }

    fn details(&self) -> String {
        match self {
            DeviceError::NoPod { .. } => {
                "devices are looked up by pod: the runtime must pass K8S_POD_NAMESPACE and \
                 K8S_POD_NAME"
                    .into()
            }
            DeviceError::Unavailable { api, checkpoint } => {
                let api = match api {
                    Some(e) => format!("{e}: {}", source_chain(e.as_ref())),
                    None => "the PodResources socket does not exist".into(),
                };
                let checkpoint = match checkpoint {
                    Some(e) => format!("{e}: {}", source_chain(e.as_ref())),
                    None => "no K8S_POD_UID to read the checkpoint by".into(),
                };
                format!("{api}; {checkpoint}")
            }
            DeviceError::Claim { source, .. } => format!("{source}: {}", source.details()),
            DeviceError::ClaimMissing { .. } => {
                "the pod's spec.resourceClaims (or status.resourceClaimStatuses) names it".into()
            }
            DeviceError::ClaimUnallocated { .. } => {
                "its status.allocation is empty: the scheduler has not allocated it yet".into()
            }
            DeviceError::Exhausted { allocated, .. } => {
                format!("the pod has {allocated} devices of it; request one per network naming it")
            }
        }
    }
}

/// The causes of `e`, joined: what the kubelet client's and the checkpoint's errors wrap.
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut causes = Vec::new();
    let mut next = e.source();
    while let Some(cause) = next {
        causes.push(cause.to_string());
        next = cause.source();
    }
    if causes.is_empty() {
        "no further cause".into()
    } else {
        causes.join(": ")
    }
}

impl Coded for PlanError {
    fn code(&self) -> ErrorCode {
        match self {
            PlanError::Network(e) => e.code(),
            PlanError::Selection { .. }
            | PlanError::PodNamespace { .. }
            | PlanError::Isolated { .. }
            | PlanError::NoSuchNad { .. }
            | PlanError::InterfaceTaken { .. }
            | PlanError::DefaultRouteTaken { .. } => ErrorCode::INVALID_NETWORK_CONFIG,
            PlanError::Netns { source, .. } if source.is_not_found() => {
                ErrorCode::UNKNOWN_CONTAINER
            }
            PlanError::Netns { .. } | PlanError::ListLinks { .. } => ErrorCode::IO_FAILURE,
            // The runtime asked for a name its pod already uses: the request is at fault.
            PlanError::InterfaceExists { .. } => ErrorCode::INVALID_ENVIRONMENT,
            PlanError::Devices(e) => e.code(),
        }
    }

    fn details(&self) -> String {
        match self {
            PlanError::Network(e) => e.details(),
            PlanError::Selection { source, .. } => source.to_string(),
            PlanError::PodNamespace { why, .. } => why.to_string(),
            PlanError::Isolated {
                pod_namespace,
                global_namespaces,
                ..
            } => format!(
                "namespaceIsolation: a pod in {pod_namespace} may use networks of its own \
                 namespace or of {global_namespaces:?} only"
            ),
            PlanError::NoSuchNad { looked, .. } => format!("no such NAD: {looked}"),
            PlanError::InterfaceTaken { network, .. } => {
                format!("network {network} asks for an interface name already taken")
            }
            PlanError::DefaultRouteTaken { gateway, holder } => format!(
                "network {holder} already holds the {} default route",
                if gateway.is_ipv4() { "IPv4" } else { "IPv6" }
            ),
            PlanError::Netns { source, .. } | PlanError::ListLinks { source } => source.to_string(),
            PlanError::InterfaceExists { network, .. } => {
                format!("network {network} would make it")
            }
            PlanError::Devices(e) => e.details(),
        }
    }
}

impl Coded for AttachmentError {
    fn code(&self) -> ErrorCode {
        match self {
            AttachmentError::Delegate { source, .. } => source.code,
            AttachmentError::NoCachedResult { .. } => ErrorCode::CHECK_FAILED,
            AttachmentError::DeviceInfoFile { .. } => ErrorCode::IO_FAILURE,
        }
    }

    fn details(&self) -> String {
        match self {
            AttachmentError::Delegate { source, .. } => source.details.clone(),
            AttachmentError::NoCachedResult { .. } => "its ADD did not complete".into(),
            AttachmentError::DeviceInfoFile { source, .. } => source.to_string(),
        }
    }
}

impl Coded for DefaultRouteError {
    fn code(&self) -> ErrorCode {
        ErrorCode::IO_FAILURE
    }

    fn details(&self) -> String {
        match &self.source {
            Some(e) => e.to_string(),
            None => "not found".into(),
        }
    }
}

impl Coded for MetaError {
    fn code(&self) -> ErrorCode {
        match self {
            MetaError::Config(e) => e.code(),
            MetaError::Cache(e) => e.code(),
            MetaError::Lock(e) => e.code(),
            MetaError::Source(e) => e.code(),
            MetaError::Plan(e) => e.code(),
            MetaError::Attachment(e) => e.code(),
            MetaError::DefaultRoute(e) => e.code(),
            MetaError::NotReady { .. } => ErrorCode::TRY_AGAIN_LATER,
            MetaError::AlreadyAttached { .. } => ErrorCode::INVALID_ENVIRONMENT,
            MetaError::NotAttached { .. } | MetaError::CorruptCache { .. } => {
                ErrorCode::CHECK_FAILED
            }
            MetaError::CorruptCacheNoPod { .. } => ErrorCode::IO_FAILURE,
            MetaError::Several { first, .. } => first.code(),
            MetaError::RollbackIncomplete { failure, .. } => failure.code(),
            // STATUS says "not available" where the other verbs say "try again later".
            MetaError::Unavailable(e) => match e.code() {
                ErrorCode::TRY_AGAIN_LATER => ErrorCode::PLUGIN_NOT_AVAILABLE,
                code => code,
            },
        }
    }

    fn details(&self) -> String {
        match self {
            MetaError::Config(e) => e.details(),
            MetaError::Cache(e) => e.details(),
            MetaError::Lock(e) => e.details(),
            MetaError::Source(e) => e.details(),
            MetaError::Plan(e) => e.details(),
            MetaError::Attachment(e) => e.details(),
            MetaError::DefaultRoute(e) => e.details(),
            MetaError::NotReady { file, waited } => format!(
                "readinessindicatorfile {} did not appear within {waited:?}",
                file.display()
            ),
            MetaError::AlreadyAttached { .. } => "DEL it before adding it again".into(),
            MetaError::NotAttached { .. } => "nothing was added, or it was deleted".into(),
            MetaError::CorruptCache { why, .. } => why.clone(),
            MetaError::CorruptCacheNoPod { why, pod, .. } => format!(
                "{why}; {pod}; the networks from the config were deleted, the networks the \
                 pod selected cannot be known; remove the file once they are cleaned up"
            ),
            MetaError::Several { first, rest } => {
                let others: Vec<String> = rest
                    .iter()
                    .map(|f| format!("{f} (code {}): {}", f.code(), f.details()))
                    .collect();
                format!(
                    "{}; {} more failures: {}",
                    first.details(),
                    rest.len(),
                    others.join("; ")
                )
            }
            MetaError::RollbackIncomplete { failure, rollback } => format!(
                "{}; rollback incomplete, DEL will retry from the cache: {}",
                failure.details(),
                cni_error(rollback.as_ref())
            ),
            MetaError::Unavailable(e) => e.details(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn io() -> std::io::Error {
        std::io::Error::from_raw_os_error(13)
    }

    fn delegate(code: u32, msg: &str, details: &str) -> MetaError {
        AttachmentError::Delegate {
            network: "default/net-a".into(),
            ifname: "net1".into(),
            verb: cni::Command::Del,
            source: Box::new(Error::new(ErrorCode(code), msg, details)),
        }
        .into()
    }

    #[test]
    fn codes_of_the_meta_plugins_own_failures() {
        let file = PathBuf::from("/var/lib/cni/multus/c1+eth0.meta-cni.json");
        let cases: Vec<(MetaError, u32)> = vec![
            (ConfigError::NoClusterNetwork.into(), 7),
            (CacheError::NameTooLong { len: 300, max: 255 }.into(), 4),
            (
                CacheError::Read {
                    file: file.clone(),
                    source: io(),
                }
                .into(),
                5,
            ),
            (
                LockError::Dir(CacheError::CreateDir {
                    dir: "/x".into(),
                    source: io(),
                })
                .into(),
                5,
            ),
            (
                SourceError::from(NadFileError::NotYaml {
                    path: "/n/default/a.yaml".into(),
                    at: Some((2, 3)),
                })
                .into(),
                6,
            ),
            (
                SourceError::from(ApiError::GaveUp {
                    what: "GET pod default/p".into(),
                    attempts: 5,
                    last: AttemptFailure::Timeout(Duration::from_secs(1)),
                })
                .into(),
                11,
            ),
            (SourceError::PodGone { why: "gone".into() }.into(), 3),
            (
                PlanError::InterfaceExists {
                    ifname: "net1".into(),
                    network: "default/net-a".into(),
                }
                .into(),
                4,
            ),
            (delegate(7, "bad", "why"), 7),
            (
                MetaError::NotAttached {
                    container_id: "c1".into(),
                    ifname: "eth0".into(),
                },
                102,
            ),
            (
                MetaError::Unavailable(Box::new(MetaError::NotReady {
                    file: "/run/ready".into(),
                    waited: Duration::from_secs(1),
                })),
                50,
            ),
            (MetaError::Unavailable(Box::new(delegate(7, "bad", ""))), 7),
        ];
        for (e, code) in cases {
            let shown = e.to_string();
            let e = Error::from(e);
            assert_eq!(e.code, ErrorCode(code), "{e:?}");
            assert_eq!(e.msg, shown);
        }
    }

    #[test]
    fn a_delegates_error_keeps_its_code_and_details_and_gains_the_network() {
        let e = Error::from(delegate(11, "busy", "try later"));
        assert_eq!(
            e,
            Error::new(
                ErrorCode(11),
                "network default/net-a (net1) DEL: busy",
                "try later"
            )
        );
    }

    #[test]
    fn several_failures_are_one_error_saying_all_of_them() {
        let e = Error::from(MetaError::Several {
            first: Box::new(delegate(5, "a", "x")),
            rest: vec![delegate(7, "b", "y")],
        });
        assert_eq!(e.code, ErrorCode(5));
        assert_eq!(e.msg, "network default/net-a (net1) DEL: a");
        assert_eq!(
            e.details,
            "x; 1 more failures: network default/net-a (net1) DEL: b (code 7): y"
        );

        let e = Error::from(MetaError::RollbackIncomplete {
            failure: Box::new(delegate(7, "add failed", "bad")),
            rollback: Box::new(delegate(5, "del failed", "busy")),
        });
        assert_eq!(e.code, ErrorCode(7));
        assert_eq!(
            e.details,
            "bad; rollback incomplete, DEL will retry from the cache: \
             network default/net-a (net1) DEL: del failed: busy"
        );
    }
}

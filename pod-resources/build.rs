//! Generates the PodResources v1 messages and client (and, with the `server` feature, the
//! server) from the kubelet's own proto, vendored under `proto/` at its upstream path.
//! protox compiles it in Rust, so building needs no system `protoc`.

use std::path::Path;

/// The proto as it lives in k8s.io/kubelet.
const PROTO: &str = "k8s.io/kubelet/pkg/apis/podresources/v1/api.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let include = Path::new("proto");
    println!("cargo:rerun-if-changed={}", include.join(PROTO).display());
    let descriptors = protox::compile([PROTO], [include])?;
    tonic_prost_build::configure()
        .build_client(true)
        // Only the stand-ins of the kubelet serve the API.
        .build_server(std::env::var_os("CARGO_FEATURE_SERVER").is_some())
        // The client connects through a Unix-socket connector of its own.
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}

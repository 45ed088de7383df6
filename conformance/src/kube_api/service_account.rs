//! What a pod's service account gives an in-cluster client, pointing at a [`KubeApi`]: the
//! mounted directory (`token`, `ca.crt`, `namespace`) and the `KUBERNETES_SERVICE_HOST`/
//! `KUBERNETES_SERVICE_PORT` variables the kubelet sets.

use std::path::{Path, PathBuf};

use super::kubeconfig::{write_private, write_token_file};
use super::KubeApi;

/// The service account's token file in the directory [`write_service_account`] writes.
pub const SERVICE_ACCOUNT_TOKEN: &str = "token";

/// Writes `dir` as the kubelet mounts a service account (it is made if missing): `token`
/// (the server's current token, empty if it has none), `ca.crt` (the server's CA; the
/// server must serve TLS, as in-cluster clients only speak HTTPS) and `namespace`. Rotate
/// the token with [`write_token_file`] on `dir/token` and [`KubeApi::rotate_token`].
/// Returns `dir`.
pub fn write_service_account(dir: &Path, api: &KubeApi, namespace: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let ca = api
        .ca_pem()
        .expect("an in-cluster client speaks HTTPS: start the stand-in with tls()");
    write_token_file(
        &dir.join(SERVICE_ACCOUNT_TOKEN),
        api.token().as_deref().unwrap_or_default(),
    );
    write_private(&dir.join("ca.crt"), ca.as_bytes());
    write_private(&dir.join("namespace"), namespace.as_bytes());
    dir.to_path_buf()
}

/// `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT` for `api`, as the kubelet sets
/// them in a pod's environment.
pub fn service_env(api: &KubeApi) -> [(&'static str, String); 2] {
    [
        ("KUBERNETES_SERVICE_HOST", api.addr().ip().to_string()),
        ("KUBERNETES_SERVICE_PORT", api.addr().port().to_string()),
    ]
}

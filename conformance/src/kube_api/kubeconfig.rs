//! Kubeconfig files pointing at a [`KubeApi`], for a client that must find the server the
//! way the plugin does: through a file.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{json, Value};

use super::{ClientCert, KubeApi};

/// The file name [`write_kubeconfig`] and [`write_kubeconfig_with_token_file`] write.
pub const KUBECONFIG_FILE: &str = "kubeconfig";

/// The token file [`write_kubeconfig_with_token_file`] writes next to the kubeconfig.
pub const TOKEN_FILE: &str = "token";

/// Writes `dir/kubeconfig` (mode 0600) for `api`: one cluster (`server: http://<addr>`, or
/// `https://` with the server's CA as `certificate-authority-data`), one user with the
/// server's current token inline (no credentials if it has none), one context, selected as
/// `current-context`. Returns the file's path.
pub fn write_kubeconfig(dir: &Path, api: &KubeApi) -> PathBuf {
    let user = match api.token() {
        Some(token) => json!({ "token": token }),
        None => json!({}),
    };
    write_config(dir, api, user)
}

/// Like [`write_kubeconfig`], but the user reads its token from `dir/token` (`tokenFile`,
/// an absolute path), written here with the server's current token (empty if it has none).
/// A test rotates the token with [`KubeApi::set_token`] and [`write_token_file`].
pub fn write_kubeconfig_with_token_file(dir: &Path, api: &KubeApi) -> PathBuf {
    let token_file = absolute(dir).join(TOKEN_FILE);
    write_token_file(&token_file, api.token().as_deref().unwrap_or_default());
    write_config(dir, api, json!({ "tokenFile": token_file }))
}

/// Like [`write_kubeconfig`], but the user authenticates with the client certificate `cert`
/// (`client-certificate-data`, `client-key-data`; see [`KubeApi::client_cert`]) and no token.
pub fn write_kubeconfig_with_client_cert(dir: &Path, api: &KubeApi, cert: &ClientCert) -> PathBuf {
    let user = json!({
        "client-certificate-data": base64_of(&cert.cert_pem),
        "client-key-data": base64_of(&cert.key_pem),
    });
    write_config(dir, api, user)
}

/// Like [`write_kubeconfig`], but trusting the CA `ca_pem` instead of the server's (a
/// client that must refuse the server).
pub fn write_kubeconfig_with_ca(dir: &Path, api: &KubeApi, ca_pem: &str) -> PathBuf {
    let user = match api.token() {
        Some(token) => json!({ "token": token }),
        None => json!({}),
    };
    write_config_with_ca(dir, api, user, Some(ca_pem))
}

/// Replaces the token file at `path` atomically (a reader sees the old or the new token,
/// never half of one), mode 0600.
pub fn write_token_file(path: &Path, token: &str) {
    write_private(path, token.as_bytes());
}

fn base64_of(pem: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(pem)
}

fn write_config(dir: &Path, api: &KubeApi, user: Value) -> PathBuf {
    write_config_with_ca(dir, api, user, api.ca_pem().as_deref())
}

fn write_config_with_ca(dir: &Path, api: &KubeApi, user: Value, ca_pem: Option<&str>) -> PathBuf {
    const NAME: &str = "meta-cni-test";
    let mut cluster = json!({ "server": api.url() });
    if let Some(ca) = ca_pem {
        cluster["certificate-authority-data"] = json!(base64_of(ca));
    }
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": NAME, "cluster": cluster }],
        "users": [{ "name": NAME, "user": user }],
        "contexts": [{
            "name": NAME,
            "context": { "cluster": NAME, "user": NAME, "namespace": "default" },
        }],
        "current-context": NAME,
        "preferences": {},
    });
    let yaml = serde_saphyr::to_string(&config).expect("a kubeconfig serialises as YAML");
    let path = dir.join(KUBECONFIG_FILE);
    write_private(&path, yaml.as_bytes());
    path
}

/// `dir` made absolute against the current directory.
fn absolute(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|e| panic!("absolute path of {}: {e}", dir.display()))
}

/// Writes `path` through a temporary file and a rename; mode 0600 from the start.
pub(crate) fn write_private(path: &Path, contents: &[u8]) {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

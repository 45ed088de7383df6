//! HTTPS for the stand-in: a CA made for each server (rcgen), a server certificate for
//! `localhost`, `127.0.0.1` and the address it listens on, and client certificates issued by
//! the same CA on demand. Client certificates are verified by rustls against that CA, so a
//! client with none (where they are required) or with another CA's is refused during the
//! handshake, before any request is read.

use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

/// Whether the server asks for client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCerts {
    /// Not asked for: clients authenticate with a bearer token (or not at all).
    Off,
    /// Asked for and verified when sent; a client without one may use a bearer token.
    Optional,
    /// A client without a certificate of the server's CA is refused at the TLS layer.
    Required,
}

/// A client certificate and its key, issued by a stand-in's CA.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key (PKCS#8), PEM.
    pub key_pem: String,
}

/// The CA and the acceptor of one server.
pub(crate) struct Tls {
    ca: CertifiedIssuer<'static, KeyPair>,
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// The params of a leaf certificate with `names` (IP strings become IP SANs) and `cn`.
fn leaf(
    names: Vec<String>,
    cn: &str,
    usage: ExtendedKeyUsagePurpose,
) -> io::Result<CertificateParams> {
    let mut params = CertificateParams::new(names).map_err(other)?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    Ok(params)
}

impl Tls {
    /// A new CA, and a server certificate for `localhost`, `127.0.0.1`, `::1` and `ip`.
    pub(crate) fn new(ip: IpAddr, client_certs: ClientCerts) -> io::Result<Tls> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(other)?;
        // A name of its own: a client trusting another stand-in's CA finds no issuer
        // (UnknownIssuer), as with a real cluster's, rather than a bad signature.
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        params.distinguished_name.push(
            DnType::CommonName,
            format!("meta-cni test CA {} {serial}", std::process::id()),
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().map_err(other)?)
            .map_err(other)?;
        let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        if !names.contains(&ip.to_string()) {
            names.push(ip.to_string());
        }
        let key = KeyPair::generate().map_err(other)?;
        let cert = leaf(names, "kube-apiserver", ExtendedKeyUsagePurpose::ServerAuth)?
            .signed_by(&key, &ca)
            .map_err(other)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(other)?;
        let builder = match client_certs {
            ClientCerts::Off => builder.with_no_client_auth(),
            ClientCerts::Optional | ClientCerts::Required => {
                let mut roots = RootCertStore::empty();
                roots.add(ca.der().clone()).map_err(other)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = match client_certs {
                    ClientCerts::Optional => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                builder.with_client_cert_verifier(verifier.build().map_err(other)?)
            }
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = builder
            .with_single_cert(vec![cert.der().clone()], key)
            .map_err(other)?;
        Ok(Tls {
            ca,
            config: Arc::new(config),
        })
    }

    /// The CA certificate, PEM: what a kubeconfig's `certificate-authority-data` holds and a
    /// service account's `ca.crt` is.
    pub(crate) fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A client certificate for `cn` (the user a real API server sees), and its DER, by
    /// which the server recognises it.
    pub(crate) fn issue(&self, cn: &str) -> io::Result<(ClientCert, CertificateDer<'static>)> {
        let key = KeyPair::generate().map_err(other)?;
        let cert = leaf(Vec::new(), cn, ExtendedKeyUsagePurpose::ClientAuth)?
            .signed_by(&key, &self.ca)
            .map_err(other)?;
        let issued = ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok((issued, cert.der().clone()))
    }

    /// The server's TLS configuration.
    pub(crate) fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.config)
    }
}

//! The SDK's HTTP client: hyper with rustls on the ring provider. The SDK's default HTTPS
//! client uses aws-lc-rs, whose C build (cmake, minutes of compile) this avoids; ring is a
//! supported rustls provider, and the roots are the system's, so HTTPS to real EC2 works.

use aws_sdk_ec2::config::SharedHttpClient;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::Builder;

/// One client for EC2 and IMDS (it speaks plain HTTP too: IMDS and test endpoints).
pub(super) fn https_client() -> SharedHttpClient {
    Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

//! The EC2 Query protocol, as far as tests need it to talk to the emulator: a form-encoded
//! `POST /` of `Action=...&Version=2016-11-15&...`, and an XML answer read by element name.
//!
//! moto routes a request by the credential scope of its `Authorization` header
//! (`.../<region>/ec2/aws4_request`) and does not check signatures, so the header is
//! SigV4-shaped but unsigned. The agent's real client signs; this one only has to reach moto.

use std::io;
use std::net::SocketAddr;

use super::http::{self, HttpResponse};

/// The EC2 API version every request names.
pub const VERSION: &str = "2016-11-15";

/// One EC2 answer: HTTP status and XML body.
#[derive(Debug, Clone)]
pub struct Ec2Answer {
    /// The HTTP status: 200, or 400 / 500 / 503 with an error document.
    pub status: u16,
    /// The XML body.
    pub body: String,
}

impl Ec2Answer {
    /// The error code (`<Code>` of the error document), if the call failed.
    pub fn error_code(&self) -> Option<String> {
        (self.status != 200).then(|| self.value("Code")).flatten()
    }

    /// The text of every element called `tag`, in document order (e.g. `privateIpAddress`
    /// for every address in a DescribeNetworkInterfaces answer). Elements are matched by name
    /// only, wherever they are; entities are not decoded (EC2 values need none).
    pub fn values(&self, tag: &str) -> Vec<String> {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let mut found = Vec::new();
        let mut rest = self.body.as_str();
        while let Some(start) = rest.find(&open) {
            rest = &rest[start + open.len()..];
            match rest.find(&close) {
                Some(end) if !rest[..end].contains('<') => found.push(rest[..end].to_owned()),
                _ => {}
            }
        }
        found
    }

    /// The text of the first element called `tag`.
    pub fn value(&self, tag: &str) -> Option<String> {
        self.values(tag).into_iter().next()
    }

    /// Panics (with the answer) unless the call succeeded; returns the answer.
    #[track_caller]
    pub fn ok(self) -> Ec2Answer {
        assert_eq!(self.status, 200, "EC2 call failed: {}", self.body);
        self
    }
}

/// Sends `Action=action` with `params` to the EC2 endpoint at `addr`, credential scope
/// `region`.
pub(crate) fn call(
    addr: SocketAddr,
    region: &str,
    action: &str,
    params: &[(&str, &str)],
) -> io::Result<Ec2Answer> {
    let mut form = format!("Action={}&Version={VERSION}", encode(action));
    for (name, value) in params {
        form.push_str(&format!("&{}={}", encode(name), encode(value)));
    }
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=test/20250101/{region}/ec2/aws4_request, \
         SignedHeaders=host, Signature=0"
    );
    let HttpResponse { status, body, .. } = http::request(
        addr,
        "POST",
        "/",
        &[
            ("Authorization", &auth),
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
        ],
        form.as_bytes(),
    )?;
    Ok(Ec2Answer { status, body })
}

/// Percent-encodes a form value (RFC 3986 unreserved characters stay as they are).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_form_values() {
        assert_eq!(encode("10.0.1.16/28"), "10.0.1.16%2F28");
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }

    #[test]
    fn reads_values_and_error_codes() {
        let answer = Ec2Answer {
            status: 400,
            body: "<Response><Errors><Error><Code>AttachmentLimitExceeded</Code>\
                   <Message>no</Message></Error></Errors></Response>"
                .to_owned(),
        };
        assert_eq!(
            answer.error_code().as_deref(),
            Some("AttachmentLimitExceeded")
        );
        let answer = Ec2Answer {
            status: 200,
            body: "<a><item><ip>1</ip></item><item><ip>2</ip></item><ipSet/></a>".to_owned(),
        };
        assert_eq!(answer.values("ip"), ["1", "2"]);
        assert_eq!(answer.error_code(), None);
    }
}

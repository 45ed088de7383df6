//! The log of every request the stand-in received.

use serde_json::Value;

/// One request as the stand-in received it, and the status it answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The query string (after `?`), if there was one.
    pub query: Option<String>,
    /// The `Content-Type` header, if sent.
    pub content_type: Option<String>,
    /// The request body (lossy UTF-8; empty for a GET).
    pub body: String,
    /// The bearer token sent, if any (whether it was accepted or not).
    pub token: Option<String>,
    /// The common name of the verified client certificate the connection presented: the
    /// user the request was authenticated as.
    pub client_cn: Option<String>,
    /// The HTTP status the stand-in answered with (including injected failures and 401s).
    pub status: u16,
}

impl RecordedRequest {
    /// True for a request with this method and exactly this path.
    pub fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

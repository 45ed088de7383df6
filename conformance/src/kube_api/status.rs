//! Kubernetes `Status` objects: the body of every answer that is not an object, shaped and
//! worded as kube-apiserver words them.

use serde_json::{json, Value};

use super::store::Kind;

/// A `Status` with `status: Failure`.
fn failure(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status["code"] = code.into();
    status
}

/// `details` naming one object of `kind`.
fn object_details(kind: Kind, name: &str) -> Value {
    let mut details = json!({ "name": name });
    if let Some(group) = kind.group() {
        details["group"] = group.into();
    }
    details["kind"] = kind.plural().into();
    details
}

/// 404 for an object that does not exist.
pub(crate) fn object_not_found(kind: Kind, name: &str) -> Value {
    failure(
        404,
        "NotFound",
        &format!("{} \"{name}\" not found", kind.qualified()),
        Some(object_details(kind, name)),
    )
}

/// 404 for a path the server has no handler for.
pub(crate) fn path_not_found() -> Value {
    failure(
        404,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

/// 405 for a verb the resource does not support here.
pub(crate) fn method_not_allowed() -> Value {
    failure(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        Some(json!({})),
    )
}

/// 401 for a missing or wrong bearer token.
pub(crate) fn unauthorized() -> Value {
    failure(401, "Unauthorized", "Unauthorized", None)
}

/// 415 for a PATCH whose content type is not a patch type the server knows.
pub(crate) fn unsupported_media_type(accepted: &[&str]) -> Value {
    failure(
        415,
        "UnsupportedMediaType",
        &format!(
            "the body of the request was in an unknown format - accepted media types include: {}",
            accepted.join(", ")
        ),
        None,
    )
}

/// 400 for a request body the server cannot decode.
pub(crate) fn bad_request(message: &str) -> Value {
    failure(400, "BadRequest", message, None)
}

/// 409 for a write based on a stale `resourceVersion`.
pub(crate) fn conflict(kind: Kind, name: &str) -> Value {
    failure(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again",
            kind.qualified()
        ),
        Some(object_details(kind, name)),
    )
}

/// Seconds a 429 asks the client to wait (`Retry-After` and `details.retryAfterSeconds`).
pub(crate) const RETRY_AFTER_SECONDS: u32 = 1;

/// An injected failure with HTTP status `code`: the reason and message kube-apiserver gives
/// that code, for any code from 400 to 599.
pub(crate) fn injected(code: u16) -> Value {
    let (reason, message, details) = match code {
        400 => ("BadRequest", "injected fault", None),
        401 => ("Unauthorized", "Unauthorized", None),
        403 => ("Forbidden", "forbidden: injected fault", Some(json!({}))),
        404 => (
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        ),
        405 => (
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            Some(json!({})),
        ),
        409 => (
            "Conflict",
            "Operation cannot be fulfilled: the object has been modified; please apply your \
             changes to the latest version and try again",
            Some(json!({})),
        ),
        410 => ("Expired", "too old resource version", None),
        422 => ("Invalid", "injected fault", Some(json!({}))),
        429 => (
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
            Some(json!({ "retryAfterSeconds": RETRY_AFTER_SECONDS })),
        ),
        500 => (
            "InternalError",
            "Internal error occurred: injected fault",
            Some(json!({ "causes": [{ "message": "injected fault" }] })),
        ),
        503 => (
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
            Some(json!({})),
        ),
        504 => (
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be \
             processing the request",
            Some(json!({})),
        ),
        _ => ("", "injected fault", None),
    };
    failure(code, reason, message, details)
}

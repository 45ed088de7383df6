//! One request in, one answer out: injected faults, the token check, then the routes. Pure
//! over [`State`]: the HTTP server only translates.

use serde_json::Value;

use super::discovery::{self, ApiResource, SERVED};
use super::field_selector::FieldSelector;
use super::patch::{self, PatchTarget, Subresource};
use super::query::Query;
use super::recorded::RecordedRequest;
use super::route::{self, Target};
use super::state::State;
use super::status;
use super::watch::Watch;

/// The parts of an HTTP request the stand-in looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    /// `GET`, `PATCH`, ...
    pub(crate) method: &'a str,
    /// The path, without the query.
    pub(crate) path: &'a str,
    /// The query string, if any.
    pub(crate) query: Option<&'a str>,
    /// The `Content-Type` header.
    pub(crate) content_type: Option<&'a str>,
    /// The `Authorization` header.
    pub(crate) authorization: Option<&'a str>,
    /// The common name of the verified client certificate the connection presented.
    pub(crate) client_cn: Option<&'a str>,
    /// The whole body.
    pub(crate) body: &'a [u8],
}

/// What to answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    /// HTTP status.
    pub(crate) status: u16,
    /// JSON body: an object, a list or a `Status`.
    pub(crate) body: Value,
    /// A `Retry-After` header, in seconds.
    pub(crate) retry_after: Option<u32>,
}

impl Reply {
    fn ok(body: Value) -> Reply {
        Reply {
            status: 200,
            body,
            retry_after: None,
        }
    }

    /// An error answer; the HTTP status is the `Status` object's `code`.
    fn failure(status: Value) -> Reply {
        let code = status["code"].as_u64().and_then(|c| u16::try_from(c).ok());
        Reply {
            status: code.unwrap_or(500),
            body: status,
            retry_after: None,
        }
    }

    fn injected(code: u16) -> Reply {
        Reply {
            retry_after: (code == 429).then_some(status::RETRY_AFTER_SECONDS),
            ..Reply::failure(status::injected(code))
        }
    }
}

/// Handles `request` and appends it, with the status answered, to the request log.
pub(crate) fn handle(state: &mut State, request: &Request<'_>) -> Reply {
    let reply = answer(state, request);
    record(state, request, reply.status);
    reply
}

fn record(state: &mut State, request: &Request<'_>, status: u16) {
    state.requests.push(RecordedRequest {
        method: request.method.to_owned(),
        path: request.path.to_owned(),
        query: request.query.map(str::to_owned),
        content_type: request.content_type.map(str::to_owned),
        body: String::from_utf8_lossy(request.body).into_owned(),
        token: bearer_token(request.authorization).map(str::to_owned),
        client_cn: request.client_cn.map(str::to_owned),
        status,
    });
}

/// Handles a watch request (`?watch=true`, see [`super::watch::requested`]): the watch to
/// stream, or the answer refusing it; logged as any request is (200 for a watch).
pub(crate) fn handle_watch(state: &mut State, request: &Request<'_>) -> Result<Watch, Reply> {
    let watch = gate(state, request).map_or_else(
        || match (request.method, route::parse(request.path)) {
            ("GET", Some(Target::Collection { kind, namespace })) => {
                Watch::parse(kind, namespace, request.query)
                    .map_err(|message| Reply::failure(status::bad_request(&message)))
            }
            ("GET", _) => Err(Reply::failure(status::path_not_found())),
            _ => Err(Reply::failure(status::method_not_allowed())),
        },
        Err,
    );
    let status = watch.as_ref().map_or_else(|reply| reply.status, |_| 200);
    record(state, request, status);
    watch
}

/// Injected faults, then the token check: the answer when either stops the request.
fn gate(state: &mut State, request: &Request<'_>) -> Option<Reply> {
    if let Some(code) = state.faults.take(request.path) {
        return Some(Reply::injected(code));
    }
    // A verified client certificate authenticates as a real API server takes it: its CN
    // is the user, and no token is needed.
    if request.client_cn.is_some() {
        return None;
    }
    if let Some(token) = &state.token {
        let sent = bearer_token(request.authorization);
        let accepted = sent == Some(token.as_str())
            || sent.is_some_and(|sent| state.old_tokens.iter().any(|old| old == sent));
        if !accepted {
            return Some(Reply::failure(status::unauthorized()));
        }
    }
    None
}

fn answer(state: &mut State, request: &Request<'_>) -> Reply {
    if let Some(reply) = gate(state, request) {
        return reply;
    }
    let Some(target) = route::parse(request.path) else {
        if request.method == "GET" {
            let kinds: Vec<ApiResource> = SERVED.iter().chain(&state.discovery).copied().collect();
            if let Some(document) = discovery::document(&kinds, request.path) {
                return Reply::ok(document);
            }
        }
        return Reply::failure(status::path_not_found());
    };
    let store = &mut state.store;
    match (request.method, target) {
        ("GET", Target::Collection { kind, namespace }) => {
            let query = Query::parse(request.query);
            match FieldSelector::parse(query.get("fieldSelector").unwrap_or("")) {
                Ok(selector) => Reply::ok(store.list_selected(kind, namespace, &selector)),
                Err(message) => Reply::failure(status::bad_request(&message)),
            }
        }
        (
            "GET",
            Target::Object {
                kind,
                namespace,
                name,
                ..
            },
        ) => match store.get(kind, namespace, name) {
            Some(object) => Reply::ok(object.clone()),
            None => Reply::failure(status::object_not_found(kind, name)),
        },
        (
            "PATCH",
            Target::Object {
                kind,
                namespace,
                name,
                status,
            },
        ) => {
            let target = PatchTarget {
                kind,
                namespace,
                name,
                subresource: if status {
                    Subresource::Status
                } else {
                    Subresource::Main
                },
            };
            match patch::apply(store, target, request.content_type, request.body) {
                Ok(object) => Reply::ok(object),
                Err(status) => Reply::failure(status),
            }
        }
        _ => Reply::failure(status::method_not_allowed()),
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::{bearer_token, handle, Request, State};
    use crate::kube_api::store::Kind;
    use serde_json::json;

    fn get(path: &str) -> Request<'_> {
        Request {
            method: "GET",
            path,
            query: None,
            content_type: None,
            authorization: None,
            client_cn: None,
            body: b"",
        }
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("Basic abc")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn faults_come_before_the_token_check_and_everything_is_logged() {
        let mut state = State {
            token: Some("t".into()),
            ..State::default()
        };
        state
            .store
            .create(Kind::Pod, json!({"metadata": {"name": "p"}}));
        state.faults.fail_next(1, 429);
        let path = "/api/v1/namespaces/default/pods/p";
        let reply = handle(&mut state, &get(path));
        assert_eq!((reply.status, reply.retry_after), (429, Some(1)));
        assert_eq!(handle(&mut state, &get(path)).status, 401);
        let authorized = Request {
            authorization: Some("Bearer t"),
            ..get(path)
        };
        assert_eq!(handle(&mut state, &authorized).status, 200);
        let statuses: Vec<u16> = state.requests.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [429, 401, 200]);
    }

    #[test]
    fn old_tokens_in_their_grace_and_client_certificates_are_accepted_and_recorded() {
        let mut state = State {
            token: Some("new".into()),
            old_tokens: vec!["old".into()],
            ..State::default()
        };
        state
            .store
            .create(Kind::Pod, json!({"metadata": {"name": "p"}}));
        let path = "/api/v1/namespaces/default/pods/p";
        let with = |authorization, client_cn| Request {
            authorization,
            client_cn,
            ..get(path)
        };
        assert_eq!(
            handle(&mut state, &with(Some("Bearer old"), None)).status,
            200
        );
        assert_eq!(
            handle(&mut state, &with(Some("Bearer new"), None)).status,
            200
        );
        assert_eq!(
            handle(&mut state, &with(Some("Bearer x"), None)).status,
            401
        );
        assert_eq!(handle(&mut state, &with(None, Some("alice"))).status, 200);
        state.old_tokens.clear();
        assert_eq!(
            handle(&mut state, &with(Some("Bearer old"), None)).status,
            401
        );
        let seen: Vec<(Option<&str>, Option<&str>, u16)> = state
            .requests
            .iter()
            .map(|r| (r.token.as_deref(), r.client_cn.as_deref(), r.status))
            .collect();
        assert_eq!(
            seen,
            [
                (Some("old"), None, 200),
                (Some("new"), None, 200),
                (Some("x"), None, 401),
                (None, Some("alice"), 200),
                (Some("old"), None, 401),
            ]
        );
    }
}

//! The Kubernetes API stand-in speaks the real protocol: paths, JSON shapes, status codes and
//! `Status` bodies as kube-apiserver sends them, checked with a plain HTTP client (hyper)
//! and with the real kube-rs client the plugin uses.

use std::net::SocketAddr;
use std::time::Duration;

use conformance::kube_api::{
    fixture, write_kubeconfig, write_kubeconfig_with_token_file, write_token_file, KubeApi,
    TOKEN_FILE,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::HeaderMap;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

const POD: &str = "/api/v1/namespaces/default/pods/nfv-pod";
const POD_STATUS: &str = "/api/v1/namespaces/default/pods/nfv-pod/status";
const NADS: &str = "/apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions";
const ALL_NADS: &str = "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions";
const MERGE: &str = "application/merge-patch+json";
const NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";
const NETWORK_STATUS: &str = "k8s.v1.cni.cncf.io/network-status";

/// A server holding the fixture pod and the three fixture NADs.
fn api_with_fixtures() -> KubeApi {
    let api = KubeApi::start();
    api.add_pod(fixture("pod-three-networks"));
    for nad in ["nad-net-a", "nad-net-b", "nad-empty-config"] {
        api.add_nad(fixture(nad));
    }
    api
}

/// One answer: status, headers, JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

/// A plain HTTP/1.1 client (hyper) with a runtime of its own.
struct Http {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
}

/// One request to make.
struct Req<'a> {
    method: &'a str,
    path: &'a str,
    headers: Vec<(&'a str, String)>,
    body: String,
}

fn get(path: &str) -> Req<'_> {
    Req {
        method: "GET",
        path,
        headers: Vec::new(),
        body: String::new(),
    }
}

fn patch<'a>(path: &'a str, content_type: &str, body: &Value) -> Req<'a> {
    Req {
        method: "PATCH",
        path,
        headers: vec![("content-type", content_type.to_owned())],
        body: body.to_string(),
    }
}

impl Req<'_> {
    fn bearer(mut self, token: &str) -> Self {
        self.headers
            .push(("authorization", format!("Bearer {token}")));
        self
    }
}

impl Http {
    fn new(addr: SocketAddr) -> Http {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Http { rt, addr }
    }

    /// Opens one keep-alive connection.
    fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        self.rt.block_on(async {
            let stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(connection);
            Ok(sender)
        })
    }

    /// Sends `req` on `sender`, waiting at most `timeout`.
    fn send_on(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        req: Req<'_>,
        timeout: Duration,
    ) -> Result<Answer, String> {
        let mut request = hyper::Request::builder()
            .method(req.method)
            .uri(req.path)
            .header(HOST, self.addr.to_string());
        for (name, value) in &req.headers {
            request = request.header(*name, value);
        }
        let request = request.body(Full::new(Bytes::from(req.body))).unwrap();
        self.rt.block_on(async {
            let exchange = async {
                sender
                    .ready()
                    .await
                    .map_err(|e| format!("connection: {e}"))?;
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|e| format!("send: {e}"))?;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let bytes = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| format!("read body: {e}"))?
                    .to_bytes();
                let body = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("body is not JSON ({e}): {bytes:?}"))?;
                Ok(Answer {
                    status,
                    headers,
                    body,
                })
            };
            tokio::time::timeout(timeout, exchange)
                .await
                .map_err(|_| "timed out".to_owned())?
        })
    }

    /// Sends `req` on a new connection.
    fn send(&self, req: Req<'_>) -> Result<Answer, String> {
        let mut sender = self.connect()?;
        self.send_on(&mut sender, req, Duration::from_secs(10))
    }

    /// Sends `req` on a new connection; panics on a transport error.
    fn must(&self, req: Req<'_>) -> Answer {
        let what = format!("{} {}", req.method, req.path);
        self.send(req).unwrap_or_else(|e| panic!("{what}: {e}"))
    }
}

fn resource_version(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("resourceVersion of {object}"))
}

#[test]
fn get_pod_returns_the_stored_object() {
    let api = api_with_fixtures();
    let http = Http::new(api.addr());
    let answer = http.must(get(POD));
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.headers[CONTENT_TYPE], "application/json");
    let pod = answer.body;
    assert_eq!(Some(&pod), api.pod("default", "nfv-pod").as_ref());
    assert_eq!(pod["apiVersion"], "v1");
    assert_eq!(pod["kind"], "Pod");
    let fixture = fixture("pod-three-networks");
    assert_eq!(pod["metadata"]["uid"], fixture["metadata"]["uid"]);
    assert_eq!(
        pod["metadata"]["annotations"][NETWORKS],
        "default/net-a@net1, default/net-b"
    );
    assert_eq!(pod["spec"], fixture["spec"]);
    assert_eq!(pod["status"], fixture["status"]);
    resource_version(&pod);
}

#[test]
fn get_missing_pod_is_a_404_status() {
    let api = api_with_fixtures();
    let answer = Http::new(api.addr()).must(get("/api/v1/namespaces/default/pods/x"));
    assert_eq!(answer.status, 404);
    assert_eq!(
        answer.body,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"pods \"x\" not found","reason":"NotFound",
               "details":{"name":"x","kind":"pods"},"code":404})
    );
    // The pod exists, but in another namespace.
    let other = Http::new(api.addr()).must(get("/api/v1/namespaces/other/pods/nfv-pod"));
    assert_eq!(other.status, 404);
}

#[test]
fn merge_patch_of_an_annotation_shows_in_the_next_get() {
    let api = api_with_fixtures();
    let http = Http::new(api.addr());
    let before = http.must(get(POD)).body;
    api.clear_requests();

    let status = r#"[{"name":"cbr0","interface":"eth0","ips":["10.0.0.5"],"default":true}]"#;
    let body = json!({"metadata": {"annotations": {NETWORK_STATUS: status}}});
    let answer = http.must(patch(POD_STATUS, MERGE, &body));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let patched = answer.body;
    assert_eq!(patched["metadata"]["annotations"][NETWORK_STATUS], status);
    assert_eq!(
        patched["metadata"]["annotations"][NETWORKS], before["metadata"]["annotations"][NETWORKS],
        "the other annotation stays"
    );
    assert!(resource_version(&patched) > resource_version(&before));
    assert_eq!(patched["metadata"]["uid"], before["metadata"]["uid"]);

    let after = http.must(get(POD)).body;
    assert_eq!(after, patched);
    assert_eq!(api.pod("default", "nfv-pod"), Some(patched));

    let requests = api.requests();
    let patches: Vec<_> = requests
        .iter()
        .filter(|r| r.is("PATCH", POD_STATUS))
        .collect();
    assert_eq!(patches.len(), 1, "{requests:?}");
    assert_eq!(patches[0].content_type.as_deref(), Some(MERGE));
    assert_eq!(patches[0].json(), Some(body));
    assert_eq!(patches[0].status, 200);
    assert_eq!(requests.len(), 2, "one PATCH, one GET: {requests:?}");
    assert!(requests[1].is("GET", POD));

    // null deletes; deleting an annotation that is not there changes nothing.
    let delete = json!({"metadata": {"annotations": {NETWORK_STATUS: null}}});
    let deleted = http.must(patch(POD_STATUS, MERGE, &delete)).body;
    assert!(deleted["metadata"]["annotations"]
        .get(NETWORK_STATUS)
        .is_none());
    let again = http.must(patch(POD_STATUS, MERGE, &delete)).body;
    assert_eq!(resource_version(&again), resource_version(&deleted));
}

#[test]
fn strategic_merge_patch_is_a_merge_patch_of_annotations() {
    let api = api_with_fixtures();
    let http = Http::new(api.addr());
    let body = json!({"metadata": {"annotations": {"a": "b"}}});
    let smp = "application/strategic-merge-patch+json";
    for path in [POD_STATUS, POD] {
        let answer = http.must(patch(path, smp, &body));
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        assert_eq!(answer.body["metadata"]["annotations"]["a"], "b");
        assert!(answer.body["metadata"]["annotations"][NETWORKS].is_string());
    }
}

#[test]
fn a_stale_resource_version_in_a_patch_is_a_409() {
    let api = api_with_fixtures();
    let http = Http::new(api.addr());
    let body = json!({"metadata": {"resourceVersion": "999999", "annotations": {"a": "b"}}});
    let answer = http.must(patch(POD_STATUS, MERGE, &body));
    assert_eq!(answer.status, 409);
    assert_eq!(answer.body["reason"], "Conflict");
    assert_eq!(
        answer.body["message"],
        "Operation cannot be fulfilled on pods \"nfv-pod\": the object has been modified; \
         please apply your changes to the latest version and try again"
    );
}

#[test]
fn patch_with_another_content_type_is_a_415() {
    let api = api_with_fixtures();
    let http = Http::new(api.addr());
    let before = api.pod("default", "nfv-pod");
    let body = json!({"metadata": {"annotations": {"a": "b"}}});
    for content_type in [
        "application/json",
        "text/plain",
        "application/json-patch+json",
    ] {
        let answer = http.must(patch(POD_STATUS, content_type, &body));
        assert_eq!(answer.status, 415, "{content_type}: {}", answer.body);
        assert_eq!(answer.body["kind"], "Status");
        assert_eq!(answer.body["reason"], "UnsupportedMediaType");
        assert_eq!(answer.body["code"], 415);
    }
    let no_type = Req {
        headers: Vec::new(),
        ..patch(POD_STATUS, MERGE, &body)
    };
    assert_eq!(http.must(no_type).status, 415);
    assert_eq!(api.pod("default", "nfv-pod"), before, "nothing changed");

    let not_json = Req {
        body: "{not json".into(),
        ..patch(POD_STATUS, MERGE, &body)
    };
    let answer = http.must(not_json);
    assert_eq!(
        (answer.status, &answer.body["reason"]),
        (400, &json!("BadRequest"))
    );
}

#[test]
fn list_nads_in_a_namespace_and_cluster_wide() {
    let api = api_with_fixtures();
    let mut elsewhere = fixture("nad-net-a");
    elsewhere["metadata"]["namespace"] = "kube-system".into();
    api.add_nad(elsewhere);
    let http = Http::new(api.addr());

    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                format!(
                    "{}/{}",
                    i["metadata"]["namespace"].as_str().unwrap(),
                    i["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let list = http.must(get(NADS));
    assert_eq!(list.status, 200);
    assert_eq!(list.body["apiVersion"], "k8s.cni.cncf.io/v1");
    assert_eq!(list.body["kind"], "NetworkAttachmentDefinitionList");
    assert!(list.body["metadata"]["resourceVersion"].is_string());
    assert_eq!(
        names(&list.body),
        ["default/net-a", "default/net-b", "default/net-empty"]
    );
    for item in list.body["items"].as_array().unwrap() {
        assert_eq!(item["apiVersion"], "k8s.cni.cncf.io/v1");
        assert_eq!(item["kind"], "NetworkAttachmentDefinition");
    }
    assert_eq!(list.body["items"][2]["spec"], json!({}));

    let all = http.must(get(ALL_NADS));
    assert_eq!(all.status, 200);
    assert_eq!(
        names(&all.body),
        [
            "default/net-a",
            "default/net-b",
            "default/net-empty",
            "kube-system/net-a"
        ]
    );
    let empty = http.must(get(
        "/apis/k8s.cni.cncf.io/v1/namespaces/nowhere/network-attachment-definitions",
    ));
    assert_eq!(empty.body["items"], json!([]));

    let one = http.must(get(&format!("{NADS}/net-b")));
    assert_eq!(one.status, 200);
    assert_eq!(one.body, api.nad("default", "net-b").unwrap());
    assert!(one.body["spec"]["config"]
        .as_str()
        .unwrap()
        .contains("\"plugins\""));

    assert!(api.remove_nad("default", "net-b").is_some());
    let gone = http.must(get(&format!("{NADS}/net-b")));
    assert_eq!(gone.status, 404);
    assert_eq!(
        gone.body,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"network-attachment-definitions.k8s.cni.cncf.io \"net-b\" not found",
               "reason":"NotFound",
               "details":{"name":"net-b","group":"k8s.cni.cncf.io",
                          "kind":"network-attachment-definitions"},
               "code":404})
    );
    assert_eq!(names(&http.must(get(NADS)).body).len(), 2);
}

#[test]
fn unknown_paths_are_404_unsupported_verbs_405_and_nads_take_merge_patches() {
    let api = api_with_fixtures();
    let http = Http::new(api.addr());
    for path in [
        "/",
        "/api/v1/namespaces/default/pods/nfv-pod/log",
        "/api/v1/namespaces/default/services/s",
        "/apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/net-a/status",
    ] {
        let answer = http.must(get(path));
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(
            answer.body,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                   "message":"the server could not find the requested resource",
                   "reason":"NotFound","details":{},"code":404})
        );
    }
    let delete = Req {
        method: "DELETE",
        ..get(POD)
    };
    let answer = http.must(delete);
    assert_eq!(
        (answer.status, &answer.body["reason"]),
        (405, &json!("MethodNotAllowed"))
    );

    // NADs: a merge patch works, a strategic merge patch does not (custom resources have
    // none), and there is no status subresource.
    let label = json!({"metadata": {"labels": {"tier": "data"}}});
    let nad_patch = http.must(patch(&format!("{NADS}/net-a"), MERGE, &label));
    assert_eq!(nad_patch.status, 200, "{}", nad_patch.body);
    assert_eq!(nad_patch.body["metadata"]["labels"]["tier"], "data");
    let smp = "application/strategic-merge-patch+json";
    let nad_smp = http.must(patch(&format!("{NADS}/net-a"), smp, &label));
    assert_eq!(nad_smp.status, 415);
    let nad_status = http.must(patch(&format!("{NADS}/net-a/status"), MERGE, &label));
    assert_eq!(nad_status.status, 404);
}

#[test]
fn a_token_is_required_and_can_be_rotated() {
    let api = KubeApi::builder().token("first").start();
    api.add_pod(fixture("pod-three-networks"));
    let http = Http::new(api.addr());
    let unauthorized = json!({"kind":"Status","apiVersion":"v1","metadata":{},
        "status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401});

    let none = http.must(get(POD));
    assert_eq!((none.status, &none.body), (401, &unauthorized));
    assert_eq!(http.must(get(POD).bearer("wrong")).status, 401);
    assert_eq!(http.must(get(POD).bearer("first")).status, 200);
    let basic = Req {
        headers: vec![("authorization", "Basic Zmlyc3Q=".into())],
        ..get(POD)
    };
    assert_eq!(http.must(basic).status, 401);

    api.set_token(Some("second"));
    assert_eq!(api.token().as_deref(), Some("second"));
    assert_eq!(http.must(get(POD).bearer("first")).status, 401);
    assert_eq!(http.must(get(POD).bearer("second")).status, 200);

    api.set_token(None);
    assert_eq!(http.must(get(POD)).status, 200);
    let statuses: Vec<u16> = api.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 200, 401, 401, 200, 200]);
}

#[test]
fn fail_next_503_twice_then_serves() {
    let api = api_with_fixtures();
    let http = Http::new(api.addr());
    api.fail_next(2, 503);
    for _ in 0..2 {
        let answer = http.must(get(POD));
        assert_eq!(answer.status, 503);
        assert_eq!(answer.body["kind"], "Status");
        assert_eq!(answer.body["reason"], "ServiceUnavailable");
        assert_eq!(answer.body["code"], 503);
    }
    assert_eq!(http.must(get(POD)).status, 200);
    let statuses: Vec<u16> = api.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200]);
}

#[test]
fn injected_429_500_409_have_their_status_bodies() {
    let api = api_with_fixtures();
    let http = Http::new(api.addr());
    api.fail_next(1, 429);
    api.fail_next(1, 500);
    api.fail_next(1, 409);

    let busy = http.must(get(POD));
    assert_eq!(busy.status, 429);
    assert_eq!(busy.headers[RETRY_AFTER], "1");
    assert_eq!(busy.body["reason"], "TooManyRequests");
    assert_eq!(busy.body["details"]["retryAfterSeconds"], 1);

    let broken = http.must(patch(
        POD_STATUS,
        MERGE,
        &json!({"metadata": {"labels": {"x": "y"}}}),
    ));
    assert_eq!(broken.status, 500);
    assert_eq!(broken.body["reason"], "InternalError");
    assert!(
        api.pod("default", "nfv-pod").unwrap()["metadata"]["labels"]
            .get("x")
            .is_none(),
        "a failed PATCH changes nothing"
    );

    let conflict = http.must(get(POD));
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.body["reason"], "Conflict");
    assert!(conflict.headers.get(RETRY_AFTER).is_none());

    assert_eq!(http.must(get(POD)).status, 200);
    api.fail_next(3, 500);
    api.clear_faults();
    assert_eq!(http.must(get(POD)).status, 200);
}

#[test]
fn fail_path_hits_only_requests_under_that_path() {
    let api = api_with_fixtures();
    let http = Http::new(api.addr());
    api.fail_path("/apis/k8s.cni.cncf.io/", 500, 2);
    assert_eq!(http.must(get(POD)).status, 200);
    assert_eq!(http.must(get(NADS)).status, 500);
    assert_eq!(http.must(get(POD)).status, 200);
    assert_eq!(http.must(get(&format!("{NADS}/net-a"))).status, 500);
    assert_eq!(http.must(get(NADS)).status, 200);
}

#[test]
fn a_delay_slows_every_answer() {
    let api = api_with_fixtures();
    let http = Http::new(api.addr());
    api.set_delay(Duration::from_millis(400));
    let mut sender = http.connect().unwrap();
    let err = http
        .send_on(&mut sender, get(POD), Duration::from_millis(50))
        .unwrap_err();
    assert_eq!(err, "timed out");
    // The request was handled; only the answer is late.
    assert_eq!(api.requests().len(), 1);

    let mut sender = http.connect().unwrap();
    let answer = http
        .send_on(&mut sender, get(POD), Duration::from_secs(10))
        .unwrap();
    assert_eq!(answer.status, 200);

    api.set_delay(Duration::ZERO);
    let answer = http
        .send_on(&mut sender, get(POD), Duration::from_secs(10))
        .unwrap();
    assert_eq!(answer.status, 200);
}

#[test]
fn go_down_refuses_connections_and_come_up_serves_on_the_same_port() {
    let api = api_with_fixtures();
    let addr = api.addr();
    let http = Http::new(addr);
    let mut kept = http.connect().unwrap();
    let answer = http
        .send_on(&mut kept, get(POD), Duration::from_secs(10))
        .unwrap();
    assert_eq!(answer.status, 200);

    api.go_down();
    assert!(!api.is_up());
    let refused = http.send(get(POD)).unwrap_err();
    assert!(refused.starts_with("connect"), "{refused}");
    assert!(refused.contains("refused"), "{refused}");
    let closed = http.send_on(&mut kept, get(POD), Duration::from_secs(10));
    assert!(
        closed.is_err(),
        "an open connection is closed too: {closed:?}"
    );

    api.come_up();
    assert!(api.is_up());
    assert_eq!(api.addr(), addr);
    assert_eq!(http.must(get(POD)).status, 200);
    api.come_up();
    assert_eq!(http.must(get(POD)).status, 200);
    let statuses: Vec<u16> = api.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [200, 200, 200],
        "nothing reached a server that was down"
    );
}

#[test]
fn starts_and_comes_up_again_inside_a_private_network_namespace() {
    let node = match kernel::PrivateNetns::new() {
        Ok(node) => node,
        Err(e) => {
            eprintln!("skipped: cannot create a network namespace here ({e})");
            return;
        }
    };
    let netns = node.netns().expect("open the node namespace");
    let mut nl = kernel::Netlink::in_netns(&netns).expect("netlink in the node namespace");
    let lo = nl.link_by_name("lo").unwrap().expect("lo");
    nl.set_link_up(lo.index).unwrap();

    let api = netns
        .run(api_with_fixtures)
        .expect("enter the node namespace");
    let inside = || netns.run(|| Http::new(api.addr()).send(get(POD))).unwrap();
    assert_eq!(inside().unwrap().status, 200);

    // From the test's own namespace the server is not there.
    let _ = Http::new(api.addr()).send(get(POD));
    assert_eq!(
        api.requests().len(),
        1,
        "only the request from inside arrived"
    );

    // go_down and come_up from a thread outside: the listener comes back inside.
    api.go_down();
    assert!(inside().is_err());
    api.come_up();
    assert_eq!(inside().unwrap().status, 200);
    let _ = Http::new(api.addr()).send(get(POD));
    assert_eq!(api.requests().len(), 2);
}

#[test]
fn kubeconfig_is_private_and_names_the_server() {
    use std::os::unix::fs::PermissionsExt;

    let api = KubeApi::builder().token("t0k3n").start();
    let dir = tempfile::tempdir().unwrap();
    let path = write_kubeconfig(dir.path(), &api);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let yaml: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(yaml["apiVersion"], "v1");
    assert_eq!(yaml["kind"], "Config");
    assert_eq!(yaml["clusters"][0]["cluster"]["server"], api.url());
    assert_eq!(yaml["users"][0]["user"]["token"], "t0k3n");
    assert_eq!(yaml["current-context"], yaml["contexts"][0]["name"]);

    let path = write_kubeconfig_with_token_file(dir.path(), &api);
    let yaml: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let token_file = dir.path().join(TOKEN_FILE);
    assert_eq!(
        yaml["users"][0]["user"]["tokenFile"],
        token_file.to_str().unwrap()
    );
    assert!(yaml["users"][0]["user"].get("token").is_none());
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), "t0k3n");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

mod kube_client {
    //! The real kube-rs client, configured from the kubeconfig file alone, as the plugin is.

    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{
        Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    };
    use kube::config::{KubeConfigOptions, Kubeconfig};
    use kube::{Client, Config};
    use std::path::Path;

    async fn client(kubeconfig: &Path) -> Client {
        let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("read the kubeconfig");
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("a config from the kubeconfig");
        // As the plugin does: it retries by its own policy, not kube's (429, 503, 504).
        config.default_retry = false;
        Client::try_from(config).expect("a client without TLS for an http:// server")
    }

    fn api_error(err: kube::Error) -> kube::core::Status {
        match err {
            kube::Error::Api(status) => *status,
            other => panic!("expected an API error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn gets_the_pod_and_merge_patches_its_status() {
        let api = KubeApi::builder().token("kube-token").start();
        api.add_pod(fixture("pod-three-networks"));
        let dir = tempfile::tempdir().unwrap();
        let client = client(&write_kubeconfig(dir.path(), &api)).await;
        let pods: Api<Pod> = Api::namespaced(client, "default");

        let pod = pods.get("nfv-pod").await.expect("GET the pod");
        let fixture = fixture("pod-three-networks");
        assert_eq!(
            pod.metadata.uid.as_deref(),
            fixture["metadata"]["uid"].as_str()
        );
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(annotations[NETWORKS], "default/net-a@net1, default/net-b");
        assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("node-1"));
        assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Pending"));

        let status = r#"[{"name":"cbr0","interface":"eth0","default":true}]"#;
        let patch = Patch::Merge(json!({"metadata": {"annotations": {NETWORK_STATUS: status}}}));
        let patched = pods
            .patch_status("nfv-pod", &PatchParams::default(), &patch)
            .await
            .expect("PATCH pods/status");
        let annotations = patched.metadata.annotations.unwrap_or_default();
        assert_eq!(annotations[NETWORK_STATUS], status);
        assert_eq!(annotations[NETWORKS], "default/net-a@net1, default/net-b");
        let stored = api.pod("default", "nfv-pod").unwrap();
        assert_eq!(stored["metadata"]["annotations"][NETWORK_STATUS], status);
        assert_eq!(
            patched.metadata.resource_version.as_deref(),
            stored["metadata"]["resourceVersion"].as_str()
        );

        let patches: Vec<_> = api
            .requests()
            .into_iter()
            .filter(|r| r.method == "PATCH")
            .collect();
        assert_eq!(patches.len(), 1);
        assert_eq!(patches[0].path, POD_STATUS);
        assert_eq!(patches[0].content_type.as_deref(), Some(MERGE));

        let missing = api_error(pods.get("missing").await.unwrap_err());
        assert_eq!(missing.code, 404);
        assert_eq!(missing.reason, "NotFound");
        assert_eq!(missing.message, "pods \"missing\" not found");
        assert_eq!(pods.get_opt("missing").await.unwrap(), None);
    }

    #[tokio::test]
    async fn lists_and_gets_nads_as_dynamic_objects() {
        let api = api_with_fixtures();
        let dir = tempfile::tempdir().unwrap();
        let client = client(&write_kubeconfig(dir.path(), &api)).await;
        let gvk = GroupVersionKind::gvk("k8s.cni.cncf.io", "v1", "NetworkAttachmentDefinition");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "network-attachment-definitions");

        let nads: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
        let list = nads.list(&ListParams::default()).await.expect("LIST NADs");
        let names: Vec<_> = list
            .items
            .iter()
            .map(|n| n.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["net-a", "net-b", "net-empty"]);
        assert!(list.metadata.resource_version.is_some());

        let all: Api<DynamicObject> = Api::all_with(client, &resource);
        assert_eq!(
            all.list(&ListParams::default()).await.unwrap().items.len(),
            3
        );

        let net_a = nads.get("net-a").await.expect("GET a NAD");
        let config = net_a.data["spec"]["config"].as_str().unwrap();
        let config: Value = serde_json::from_str(config).unwrap();
        assert_eq!(config["type"], "bridge");
        assert_eq!(config["ipam"]["type"], "host-local");

        let missing = api_error(nads.get("nope").await.unwrap_err());
        assert_eq!(missing.code, 404);
        assert_eq!(
            missing.message,
            "network-attachment-definitions.k8s.cni.cncf.io \"nope\" not found"
        );
    }

    #[tokio::test]
    async fn a_rotated_token_in_the_token_file_is_picked_up() {
        let api = KubeApi::builder().token("old").start();
        api.add_pod(fixture("pod-three-networks"));
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = write_kubeconfig_with_token_file(dir.path(), &api);
        let pods: Api<Pod> = Api::default_namespaced(client(&kubeconfig).await);
        pods.get("nfv-pod").await.expect("GET with the old token");

        api.set_token(Some("new"));
        let stale: Api<Pod> = Api::default_namespaced(client(&kubeconfig).await);
        let denied = api_error(stale.get("nfv-pod").await.unwrap_err());
        assert_eq!((denied.code, denied.reason.as_str()), (401, "Unauthorized"));

        write_token_file(&dir.path().join(TOKEN_FILE), "new");
        // A new plugin process reads the kubeconfig, and so the token file, afresh.
        let pods: Api<Pod> = Api::default_namespaced(client(&kubeconfig).await);
        pods.get("nfv-pod")
            .await
            .expect("GET with the rotated token");
    }

    #[tokio::test]
    async fn errors_reach_the_client_as_api_errors_or_connection_errors() {
        let api = KubeApi::builder().token("t").start();
        api.add_pod(fixture("pod-three-networks"));
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = write_kubeconfig(dir.path(), &api);
        let pods: Api<Pod> = Api::default_namespaced(client(&kubeconfig).await);

        api.set_token(Some("rotated"));
        let denied = api_error(pods.get("nfv-pod").await.unwrap_err());
        assert_eq!((denied.code, denied.reason.as_str()), (401, "Unauthorized"));
        api.set_token(Some("t"));

        api.fail_next(1, 503);
        let busy = api_error(pods.get("nfv-pod").await.unwrap_err());
        assert_eq!(
            (busy.code, busy.reason.as_str()),
            (503, "ServiceUnavailable")
        );

        api.go_down();
        let down = pods.get("nfv-pod").await.unwrap_err();
        assert!(!matches!(down, kube::Error::Api(_)), "{down:?}");
        api.come_up();
        pods.get("nfv-pod").await.expect("GET after come_up");
    }
}

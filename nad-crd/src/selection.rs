//! The `k8s.v1.cni.cncf.io/networks` pod annotation: which networks to attach, in order.
//!
//! Two forms, told apart as Multus does: JSON when the value contains `[`, `{` or `"`, else
//! comma-separated `[namespace/]name[@interface]` entries. Unlike Multus, both forms are
//! validated alike (DNS-1123 names, CNI interface names, parsed IPs and MACs), since every
//! name here reaches an API path, a cache file name or the kernel.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::annotations::NETWORKS_ANNOTATION;
use crate::error::{AnnotationError, EntryProblem};
use crate::ip_request::IpRequest;
use crate::names::{interface_name_problem, nad_name_problem, namespace_problem};
use cni::MacAddress;

/// One selected network, with what the pod asks of the attachment. Serialises with the JSON
/// form's field names, leaving out what was not asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkSelection {
    /// The NAD's namespace: as given, else the default (the pod's namespace for `networks`).
    pub namespace: String,
    /// The NAD's name.
    pub name: String,
    /// The requested interface name in the pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Requested IPs (capability `ips`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpRequest>,
    /// Requested MAC (capability `mac`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddress>,
    /// Requested InfiniBand GUID (capability `infinibandGUID`), passed on as given.
    #[serde(rename = "infiniband-guid", skip_serializing_if = "Option::is_none")]
    pub infiniband_guid: Option<String>,
    /// Port mappings (capability `portMappings`), each an object passed on as given.
    #[serde(rename = "portMappings", skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<Value>,
    /// Bandwidth limits (capability `bandwidth`), an object passed on as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Value>,
    /// The device (e.g. a PCI address) the delegate should use.
    #[serde(rename = "deviceID", skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Extra arguments merged into the delegate netconf under `args.cni`.
    #[serde(rename = "cni-args", skip_serializing_if = "Option::is_none")]
    pub cni_args: Option<Map<String, Value>>,
    /// Gateways whose default route this attachment should get.
    #[serde(rename = "default-route", skip_serializing_if = "Vec::is_empty")]
    pub default_route: Vec<IpAddr>,
}

impl NetworkSelection {
    /// A selection of `namespace/name` asking for nothing else.
    pub fn new(namespace: &str, name: &str) -> NetworkSelection {
        NetworkSelection {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            interface: None,
            ips: Vec::new(),
            mac: None,
            infiniband_guid: None,
            port_mappings: Vec::new(),
            bandwidth: None,
            device_id: None,
            cni_args: None,
            default_route: Vec::new(),
        }
    }

    /// `namespace/name`: the attachment's name in `network-status`.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Parses a `k8s.v1.cni.cncf.io/networks` value. Entries without a namespace get
/// `pod_namespace`, which the caller has validated. An empty value selects nothing; the same
/// network may be selected more than once.
pub fn parse_networks_annotation(
    value: &str,
    pod_namespace: &str,
) -> Result<Vec<NetworkSelection>, AnnotationError> {
    parse_selections(NETWORKS_ANNOTATION, value, pod_namespace)
}

/// Either form of a selection annotation; `annotation` names it in errors.
pub(crate) fn parse_selections(
    annotation: &'static str,
    value: &str,
    default_namespace: &str,
) -> Result<Vec<NetworkSelection>, AnnotationError> {
    if value.trim().is_empty() {
        Ok(Vec::new())
    } else if value.contains(['[', '{', '"']) {
        parse_json_form(annotation, value, default_namespace)
    } else {
        parse_comma_form(annotation, value, default_namespace)
    }
}

fn parse_comma_form(
    annotation: &'static str,
    value: &str,
    default_namespace: &str,
) -> Result<Vec<NetworkSelection>, AnnotationError> {
    value
        .split(',')
        .map(str::trim)
        .enumerate()
        .map(|(index, entry)| {
            parse_text_entry(entry, default_namespace).map_err(|problem| AnnotationError::Entry {
                annotation,
                index,
                entry: entry.to_owned(),
                problem,
            })
        })
        .collect()
}

fn parse_text_entry(
    entry: &str,
    default_namespace: &str,
) -> Result<NetworkSelection, EntryProblem> {
    if entry.matches('/').count() > 1 {
        return Err(EntryProblem::MoreThanOneSlash);
    }
    if entry.matches('@').count() > 1 {
        return Err(EntryProblem::MoreThanOneAt);
    }
    let (namespace, rest) = match entry.split_once('/') {
        Some((namespace, rest)) => (Some(namespace), rest),
        None => (None, entry),
    };
    let (name, interface) = match rest.split_once('@') {
        Some((name, interface)) => (name, Some(interface)),
        None => (rest, None),
    };
    if let Some(namespace) = namespace {
        check("namespace", namespace, namespace_problem)?;
    }
    check("name", name, nad_name_problem)?;
    if let Some(interface) = interface {
        check("interface", interface, interface_name_problem)?;
    }
    let mut selection = NetworkSelection::new(namespace.unwrap_or(default_namespace), name);
    selection.interface = interface.map(str::to_owned);
    Ok(selection)
}

fn parse_json_form(
    annotation: &'static str,
    value: &str,
    default_namespace: &str,
) -> Result<Vec<NetworkSelection>, AnnotationError> {
    let malformed = |reason: String| AnnotationError::Malformed {
        annotation,
        value: value.to_owned(),
        reason,
    };
    let json: Value =
        serde_json::from_str(value).map_err(|e| malformed(format!("invalid JSON: {e}")))?;
    // Multus takes one object as well as a list of them.
    let elements = match json {
        Value::Array(elements) => elements,
        object @ Value::Object(_) => vec![object],
        _ => {
            return Err(malformed(
                "must be a JSON list of objects, or one object".to_owned(),
            ))
        }
    };
    elements
        .iter()
        .enumerate()
        .map(|(index, element)| {
            parse_json_entry(element, default_namespace).map_err(|problem| AnnotationError::Entry {
                annotation,
                index,
                entry: element.to_string(),
                problem,
            })
        })
        .collect()
}

fn parse_json_entry(
    element: &Value,
    default_namespace: &str,
) -> Result<NetworkSelection, EntryProblem> {
    let Value::Object(fields) = element else {
        return Err(EntryProblem::NotAnObject);
    };
    let name = string_field(fields, "name")?.ok_or(EntryProblem::Missing { field: "name" })?;
    check("name", name, nad_name_problem)?;
    // An empty namespace or interface means none given, as in Multus.
    let namespace = match non_empty_string_field(fields, "namespace")? {
        Some(namespace) => check("namespace", namespace, namespace_problem)?,
        None => default_namespace,
    };
    // `interfaceRequest` is the older spelling; `interface` wins when both are set.
    let interface = match non_empty_string_field(fields, "interface")? {
        Some(interface) => Some(check("interface", interface, interface_name_problem)?),
        None => non_empty_string_field(fields, "interfaceRequest")?
            .map(|interface| check("interfaceRequest", interface, interface_name_problem))
            .transpose()?,
    };

    let mut selection = NetworkSelection::new(namespace, name);
    selection.interface = interface.map(str::to_owned);
    selection.ips = list_field(fields, "ips")?
        .iter()
        .map(|ip| {
            let text = list_string("ips", ip)?;
            IpRequest::parse(text).ok_or_else(|| {
                invalid(
                    "ips",
                    text,
                    "must be an IP address, optionally with a prefix length",
                )
            })
        })
        .collect::<Result<_, _>>()?;
    selection.mac = non_empty_string_field(fields, "mac")?
        .map(|mac| {
            MacAddress::parse(mac).ok_or_else(|| {
                invalid(
                    "mac",
                    mac,
                    "must be a MAC address of six hex bytes separated by ':' or '-'",
                )
            })
        })
        .transpose()?;
    selection.infiniband_guid =
        non_empty_string_field(fields, "infiniband-guid")?.map(str::to_owned);
    selection.port_mappings = list_field(fields, "portMappings")?
        .iter()
        .map(|mapping| match mapping {
            Value::Object(_) => Ok(mapping.clone()),
            other => Err(wrong_type("portMappings", other, "a list of objects")),
        })
        .collect::<Result<_, _>>()?;
    selection.bandwidth = object_field(fields, "bandwidth")?.map(|b| Value::Object(b.clone()));
    selection.device_id = non_empty_string_field(fields, "deviceID")?.map(str::to_owned);
    selection.cni_args = object_field(fields, "cni-args")?.cloned();
    selection.default_route = list_field(fields, "default-route")?
        .iter()
        .map(|gateway| {
            let text = list_string("default-route", gateway)?;
            text.parse()
                .map_err(|_| invalid("default-route", text, "must be an IP address"))
        })
        .collect::<Result<_, _>>()?;
    Ok(selection)
}

fn check<'a>(
    field: &'static str,
    value: &'a str,
    problem: fn(&str) -> Option<&'static str>,
) -> Result<&'a str, EntryProblem> {
    match problem(value) {
        None => Ok(value),
        Some(reason) => Err(invalid(field, value, reason)),
    }
}

fn invalid(field: &'static str, value: &str, reason: &'static str) -> EntryProblem {
    EntryProblem::Invalid {
        field,
        value: value.to_owned(),
        reason,
    }
}

fn wrong_type(field: &'static str, value: &Value, expected: &'static str) -> EntryProblem {
    EntryProblem::WrongType {
        field,
        json: value.to_string(),
        expected,
    }
}

// Null counts as absent, as it does for Multus's decoder.
fn field<'a>(fields: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    fields.get(field).filter(|value| !value.is_null())
}

fn string_field<'a>(
    fields: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, EntryProblem> {
    match field(fields, name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(wrong_type(name, other, "a string")),
    }
}

fn non_empty_string_field<'a>(
    fields: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, EntryProblem> {
    Ok(string_field(fields, name)?.filter(|text| !text.is_empty()))
}

fn list_field<'a>(
    fields: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a [Value], EntryProblem> {
    match field(fields, name) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(wrong_type(name, other, "a list")),
    }
}

fn list_string<'a>(name: &'static str, item: &'a Value) -> Result<&'a str, EntryProblem> {
    item.as_str()
        .ok_or_else(|| wrong_type(name, item, "a list of strings"))
}

fn object_field<'a>(
    fields: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a Map<String, Value>>, EntryProblem> {
    match field(fields, name) {
        None => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(other) => Err(wrong_type(name, other, "an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every case's outcome, for one snapshot: the parsed selections or the error with the
    /// structure the meta plugin maps to a CNI error.
    fn outcome(input: &str) -> Value {
        match parse_networks_annotation(input, "default") {
            Ok(parsed) => json!({"input": input, "parsed": parsed}),
            Err(e) => json!({
                "input": input,
                "error": {
                    "message": e.to_string(),
                    "index": e.index(),
                    "field": e.field(),
                    "value": e.value(),
                }
            }),
        }
    }

    #[test]
    fn networks_annotation_table() {
        let long_name = "a".repeat(254);
        let longest_name = format!("{}.{}", "a".repeat(126), "b".repeat(126));
        let long_namespace = format!("{}/net1", "n".repeat(64));
        let cases: Vec<&str> = vec![
            // Comma form.
            "",
            "  \t ",
            "net1",
            "ns1/net1",
            "net1@data0",
            "ns1/net1@data0",
            " net1 , ns2/net2@if2 ,net3 ",
            "net1,net1",
            "a/b/c",
            "net1@a@b",
            "ns1/",
            "/net1",
            "net1@",
            "net1,,net2",
            "net1,",
            "Net1",
            "net.v2",
            "ns.dot/net1",
            "net_1",
            &long_name,
            &longest_name,
            &long_namespace,
            "net1@abcdefghijklmnop",
            "net1@a:b",
            "net1@a/b",
            "ns1/net1@a/b",
            "net1@..",
            "net1@.",
            "../etc",
            "ns/..",
            "ns/../etc",
            "ns/net1@a b",
            "42",
            // JSON form.
            r#"[{"name":"net1"},{"name":"net2","namespace":"ns2","interface":"eth1"}]"#,
            r#"{"name":"net1","interface":"net9"}"#,
            r#"[]"#,
            r#"[{"name":"net1","interfaceRequest":"eth5"}]"#,
            r#"[{"name":"net1","interface":"eth1","interfaceRequest":"eth5"}]"#,
            r#"[{"name":"net1","namespace":"","interface":""}]"#,
            r#"[{"name":"net.v2"}]"#,
            r#"[{"name":"Net1"}]"#,
            r#"[{"name":"../etc"}]"#,
            r#"[{"name":"net1","namespace":".."}]"#,
            r#"[{"name":"net1","interface":"a/b"}]"#,
            r#"[{"name":"net1","interface":".."}]"#,
            r#"[{"name":"net1","interface":"abcdefghijklmnop"}]"#,
            r#"[{"name":"net1","interfaceRequest":"a:b"}]"#,
            r#"[{"name":"net1","ips":["10.1.1.5/24","fd00::5","10.1.1.6"]}]"#,
            r#"[{"name":"net1","ips":["10.1.1.300/24"]}]"#,
            r#"[{"name":"net1","ips":"10.1.1.5/24"}]"#,
            r#"[{"name":"net1","ips":[5]}]"#,
            r#"[{"name":"net1","mac":"0A:58:0A:F4:01:05"}]"#,
            r#"[{"name":"net1","mac":"0a:58:0a:f4:01"}]"#,
            r#"[{"name":"net1","default-route":["10.1.1.1","fd00::1"]}]"#,
            r#"[{"name":"net1","default-route":["10.1.1.1/24"]}]"#,
            r#"[{"name":"net1","cni-args":{"vlan":100,"extra":{"b":1,"a":2}}}]"#,
            r#"[{"name":"net1","cni-args":"vlan=100"}]"#,
            r#"[{"name":"net1","portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}]"#,
            r#"[{"name":"net1","portMappings":[8080]}]"#,
            r#"[{"name":"net1","bandwidth":{"ingressRate":1000,"ingressBurst":2000}}]"#,
            r#"[{"name":"net1","bandwidth":1000}]"#,
            r#"[{"name":"sriov","deviceID":"0000:03:02.0"}]"#,
            r#"[{"name":"sriov","deviceID":3}]"#,
            r#"[{"name":"ib","infiniband-guid":"c2:11:22:33:44:55:66:77"}]"#,
            r#"[{"name":"net1","mac":null,"ips":null,"cni-args":null}]"#,
            r#"[{"name":"net1","color":"blue","interface":"eth1"}]"#,
            r#"[{"namespace":"ns1"}]"#,
            r#"[{"name":null}]"#,
            r#"[{"name":7}]"#,
            r#"[{"name":""}]"#,
            r#"[{"name":"net1"},{"name":"net2","mac":"zz:58:0a:f4:01:05"}]"#,
            r#"[{"name":"#,
            r#"[42]"#,
            r#""net1""#,
            r#"42 "x""#,
        ];
        assert!(cases.len() >= 40);
        let outcomes: Vec<Value> = cases.into_iter().map(outcome).collect();
        insta::assert_json_snapshot!("networks_annotation_table", outcomes);
    }

    #[test]
    fn errors_name_the_entry_and_the_problem() {
        let e = parse_networks_annotation("x, y ,a/b/c", "default").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"k8s.v1.cni.cncf.io/networks annotation entry 2 ("a/b/c"): more than one '/'"#
        );
        assert_eq!(e.index(), Some(2));
        assert_eq!(e.field(), None);
        assert_eq!(e.value(), "a/b/c");
        assert_eq!(e.annotation(), NETWORKS_ANNOTATION);

        let e = parse_networks_annotation(r#"[{"name":"n","mac":"zz"}]"#, "default").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"k8s.v1.cni.cncf.io/networks annotation entry 0 ("{\"name\":\"n\",\"mac\":\"zz\"}"): mac "zz": must be a MAC address of six hex bytes separated by ':' or '-'"#
        );
        assert_eq!(e.field(), Some("mac"));
        assert_eq!(e.value(), "zz");
    }

    #[test]
    fn entries_keep_their_order_and_the_pod_namespace() {
        let parsed = parse_networks_annotation("b, x/a@eth9, b", "pods").unwrap();
        let names: Vec<String> = parsed
            .iter()
            .map(NetworkSelection::qualified_name)
            .collect();
        assert_eq!(names, ["pods/b", "x/a", "pods/b"]);
        assert_eq!(parsed[1].interface.as_deref(), Some("eth9"));
    }
}

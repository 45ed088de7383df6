//! Properties of the annotation and NAD parsers over arbitrary input: none panics, and every
//! refusal names the annotation, and the entry and field where one is at fault, with the
//! offending value.

use nad_crd::{
    parse_default_network_annotation, parse_networks_annotation, AnnotationError,
    NetworkAttachmentDefinition,
};
use proptest::prelude::*;
use serde_json::{json, Value};

const FIELDS: &[&str] = &[
    "name",
    "namespace",
    "interface",
    "ips",
    "mac",
    "default-route",
    "portMappings",
    "bandwidth",
    "cni-args",
    "infiniband-guid",
    "deviceID",
];

fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-z0-9./@:-]{0,20}".prop_map(Value::String),
        prop::collection::vec("[0-9a-f.:/]{0,18}".prop_map(Value::String), 0..3)
            .prop_map(Value::Array),
        Just(json!({"a": 1})),
        Just(json!("02:00:00:00:00:01")),
        Just(json!(["10.1.2.3/24"])),
    ]
}

fn entry() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::collection::vec((prop::sample::select(FIELDS), field_value()), 0..5).prop_map(|kv| {
            Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        }),
        Just(json!("not an object")),
        Just(json!(7)),
    ]
}

/// What every refusal must carry.
fn check(e: &AnnotationError, value: &str) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(text.contains(e.annotation()), "{text}");
    if let Some(field) = e.field() {
        prop_assert!(text.contains(field), "{text} does not name {field}");
        prop_assert!(e.index().is_some(), "{text}: a field but no entry");
    }
    prop_assert!(
        value.contains(e.value()) || text.contains(e.value()),
        "{text}: offending value {:?}",
        e.value()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_parses_or_is_refused_cleanly(value in ".{0,80}") {
        if let Err(e) = parse_networks_annotation(&value, "default") {
            check(&e, &value)?;
        }
        if let Err(e) = parse_default_network_annotation(&value, "kube-system") {
            check(&e, &value)?;
        }
    }

    #[test]
    fn comma_form_entries(parts in prop::collection::vec("[a-z0-9./@_-]{0,16}", 1..4)) {
        let value = parts.join(",");
        if let Err(e) = parse_networks_annotation(&value, "default") {
            check(&e, &value)?;
            prop_assert!(e.index().is_some(), "{e}");
        }
    }

    #[test]
    fn json_form_entries_name_entry_and_field(entries in prop::collection::vec(entry(), 0..4)) {
        let value = Value::Array(entries).to_string();
        match parse_networks_annotation(&value, "default") {
            Ok(selections) => {
                for sel in selections {
                    prop_assert!(!sel.name.is_empty());
                }
            }
            Err(e) => {
                check(&e, &value)?;
                prop_assert!(e.index().is_some(), "{e}: which entry?");
            }
        }
    }

    #[test]
    fn nad_configs_never_panic(config in prop_oneof![".{0,60}", entry().prop_map(|v| v.to_string())]) {
        let nad = NetworkAttachmentDefinition::new("net-a", config);
        if let Err(e) = nad.parse_config() {
            let text = e.to_string();
            prop_assert!(text.contains("net-a"), "{text}");
            prop_assert!(!e.field().is_empty(), "{text}");
        }
    }
}

//! Properties of the protocol library's parsers over arbitrary input: none panics, and every
//! refusal is a CNI error with a code of the spec's table and a message; a netconf, conflist
//! or result refused for a bad field names that field.

use std::collections::HashMap;

use cni::{CniArgs, CniResult, Command, ConfList, Error, NetConf, Request, Version};
use proptest::prelude::*;
use serde_json::{json, Value};

/// The codes a refusal of input may carry (spec 1-7, 11, 50-51; ours from 100).
fn well_formed(e: &Error) -> bool {
    let code = e.code.0;
    let known = (1..=7).contains(&code) || code == 11 || code == 50 || code == 51 || code >= 100;
    known && !e.msg.is_empty()
}

/// What every parser of raw bytes refuses in `bytes`.
fn byte_parser_refusals(bytes: &[u8]) -> Vec<Error> {
    [
        NetConf::parse(bytes).err(),
        ConfList::parse(bytes).err(),
        ConfList::from_single(bytes).err(),
        CniResult::parse_labelled(bytes).err(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Any JSON value, a few levels deep, with keys the protocol knows mixed in.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("1.0.0"),
            Just("0.4.0"),
            Just("0.1.0"),
            Just("9.9.9"),
            Just("10.1.2.3/24"),
            Just("eth0")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just("cniVersion"),
            Just("name"),
            Just("type"),
            Just("plugins"),
            Just("ipam"),
            Just("dns"),
            Just("prevResult"),
            Just("runtimeConfig"),
            Just("capabilities"),
            Just("args"),
            Just("interfaces"),
            Just("ips"),
            Just("routes"),
            Just("address"),
            Just("interface"),
            Just("gateway")
        ]
        .prop_map(String::from),
        "[a-zA-Z]{1,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn byte_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        for e in byte_parser_refusals(&bytes) {
            prop_assert!(well_formed(&e), "{e:?}");
        }
    }

    #[test]
    fn structured_parsers_never_panic(value in json_value()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        for e in byte_parser_refusals(&bytes) {
            prop_assert!(well_formed(&e), "{e:?}");
        }
        for version in Version::ALL {
            if let Err(e) = CniResult::from_value(&value, version) {
                prop_assert!(well_formed(&e), "{e:?}");
            }
        }
    }

    #[test]
    fn cni_args_never_panic_and_round_trip(raw in ".{0,64}") {
        match CniArgs::parse(&raw) {
            Ok(args) => prop_assert_eq!(CniArgs::parse(&args.to_env()).unwrap(), args),
            Err(e) => prop_assert!(well_formed(&e) && e.code.0 == 4, "{e:?}"),
        }
    }

    #[test]
    fn requests_never_panic_and_name_what_they_refuse(
        command in prop::sample::select(vec![Command::Add, Command::Del, Command::Check, Command::Status, Command::Gc]),
        container_id in prop_oneof![Just("c1".to_string()), ".{0,20}"],
        ifname in prop_oneof![Just("eth0".to_string()), ".{0,20}"],
        cni_args in prop_oneof![Just(String::new()), ".{0,30}"],
        name in prop_oneof![Just("net1".to_string()), ".{0,12}"],
        version in prop_oneof![Just("1.1.0".to_string()), Just("0.3.1".to_string()), ".{0,6}"],
        extra in json_value(),
    ) {
        let mut conf = json!({"cniVersion": version, "name": name, "type": "x"});
        if let (Some(obj), Value::Object(more)) = (conf.as_object_mut(), extra) {
            for (k, v) in more {
                obj.entry(k).or_insert(v);
            }
        }
        let env: HashMap<&str, String> = HashMap::from([
            ("CNI_CONTAINERID", container_id.clone()),
            ("CNI_NETNS", "/var/run/netns/x".to_string()),
            ("CNI_IFNAME", ifname.clone()),
            ("CNI_ARGS", cni_args),
            ("CNI_PATH", "/opt/cni/bin".to_string()),
        ]);
        let lookup = |k: &str| env.get(k).cloned();
        let stdin = serde_json::to_vec(&conf).unwrap();
        if let Err(e) = Request::parse(command, &lookup, &stdin, &Version::ALL) {
            prop_assert!(well_formed(&e), "{e:?}");
            let text = format!("{} {}", e.msg, e.details);
            // Code 4 names the variable, code 7 the field, code 1 the versions.
            match e.code.0 {
                4 => prop_assert!(text.contains("CNI_") || text.contains("container") || text.contains("interface"), "{e:?}"),
                7 => prop_assert!(text.contains("name"), "{e:?}"),
                1 => prop_assert!(text.contains("version") || text.contains("cniVersion"), "{e:?}"),
                6 => prop_assert!(text.contains("config"), "{e:?}"),
                _ => {}
            }
        }
    }

    /// A known field of the wrong type, in a netconf, a conflist or a result: the refusal
    /// names it by its path, as libcni names it.
    #[test]
    fn a_field_of_the_wrong_type_is_named(
        (key, is_string) in prop::sample::select(vec![
            ("cniVersion", true), ("name", true), ("type", true),
            ("capabilities", false), ("runtimeConfig", false),
        ]),
        wrong in prop_oneof![
            Just(json!(7)), Just(json!(true)), Just(json!([1])),
            Just(json!({"a": 1})), Just(json!("text")),
        ],
    ) {
        prop_assume!(if is_string { !wrong.is_string() } else { !wrong.is_object() });
        let said = |e: Error| format!("{} {}", e.msg, e.details);

        let mut conf = json!({"cniVersion": "1.0.0", "name": "n", "type": "x"});
        conf[key] = wrong.clone();
        let e = NetConf::parse(&serde_json::to_vec(&conf).unwrap()).unwrap_err();
        prop_assert_eq!(e.code.0, 6);
        let text = said(e);
        prop_assert!(text.contains(key), "{}", text);

        if is_string && key != "type" {
            let mut list = json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "x"}]});
            list[key] = wrong.clone();
            let e = ConfList::parse(&serde_json::to_vec(&list).unwrap()).unwrap_err();
            let text = said(e);
            prop_assert!(text.contains(key), "{}", text);
        }

        let mut result = json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0"}],
            "ips": [{"address": "10.1.2.3/24", "interface": 0}]});
        result["ips"][0]["address"] = wrong;
        let e = CniResult::from_value(&result, Version::V1_0_0).unwrap_err();
        let text = said(e);
        prop_assert!(text.contains("ips[0].address"), "{}", text);
    }
}

//! Kubernetes label selectors: `matchLabels` and `matchExpressions` (In, NotIn, Exists,
//! DoesNotExist), ANDed, as the API server evaluates them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::error::PolicyError;
use crate::fields::index;

/// Checks `selector` at `path` is one the API would accept: known operators, values only
/// (and required) for In and NotIn.
pub(crate) fn validate(path: &str, selector: &LabelSelector) -> Result<(), PolicyError> {
    for (i, req) in selector.match_expressions.iter().flatten().enumerate() {
        let path = index(&format!("{path}.matchExpressions"), i);
        let values = req.values.as_deref().unwrap_or_default();
        match req.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(PolicyError::invalid(
                    format!("{path}.values"),
                    "[]",
                    format!("{} needs values", req.operator),
                ))
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(PolicyError::invalid(
                    format!("{path}.values"),
                    values.join(","),
                    format!("{} takes no values", req.operator),
                ))
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => {
                return Err(PolicyError::invalid(
                    format!("{path}.operator"),
                    other,
                    "must be In, NotIn, Exists or DoesNotExist",
                ))
            }
        }
    }
    Ok(())
}

/// Whether `selector` selects an object with `labels`. An empty selector selects everything.
/// The selector must have passed [`validate`].
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|req| {
        let values = req.values.as_deref().unwrap_or_default();
        let value = labels.get(&req.key);
        match req.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(v: serde_json::Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_selects_all() {
        assert!(matches(&sel(json!({})), &labels(&[])));
        assert!(matches(&sel(json!({})), &labels(&[("a", "b")])));
    }

    #[test]
    fn match_labels_are_anded() {
        let s = sel(json!({"matchLabels": {"app": "db", "tier": "back"}}));
        assert!(matches(
            &s,
            &labels(&[("app", "db"), ("tier", "back"), ("x", "y")])
        ));
        assert!(!matches(&s, &labels(&[("app", "db")])));
        assert!(!matches(&s, &labels(&[("app", "web"), ("tier", "back")])));
    }

    #[test]
    fn every_operator() {
        let case = |op: &str, values: &[&str], l: &[(&str, &str)]| {
            let s = sel(
                json!({"matchExpressions": [{"key": "env", "operator": op, "values": values}]}),
            );
            validate("s", &s).unwrap();
            matches(&s, &labels(l))
        };
        assert!(case("In", &["prod", "stage"], &[("env", "prod")]));
        assert!(!case("In", &["prod"], &[("env", "dev")]));
        assert!(!case("In", &["prod"], &[]));
        assert!(case("NotIn", &["prod"], &[("env", "dev")]));
        assert!(case("NotIn", &["prod"], &[]));
        assert!(!case("NotIn", &["prod"], &[("env", "prod")]));
        assert!(case("Exists", &[], &[("env", "")]));
        assert!(!case("Exists", &[], &[("other", "x")]));
        assert!(case("DoesNotExist", &[], &[("other", "x")]));
        assert!(!case("DoesNotExist", &[], &[("env", "x")]));
    }

    #[test]
    fn labels_and_expressions_are_anded() {
        let s = sel(json!({"matchLabels": {"app": "db"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}));
        assert!(matches(&s, &labels(&[("app", "db"), ("env", "prod")])));
        assert!(!matches(&s, &labels(&[("app", "db"), ("env", "dev")])));
        assert!(!matches(&s, &labels(&[("env", "prod")])));
    }

    #[test]
    fn refuses_bad_expressions_naming_the_path() {
        let bad = [
            (
                json!({"key": "k", "operator": "Gt", "values": ["1"]}),
                "p.matchExpressions[0].operator",
            ),
            (
                json!({"key": "k", "operator": "In", "values": []}),
                "p.matchExpressions[0].values",
            ),
            (
                json!({"key": "k", "operator": "Exists", "values": ["x"]}),
                "p.matchExpressions[0].values",
            ),
        ];
        for (req, path) in bad {
            let s = sel(json!({"matchExpressions": [req]}));
            match validate("p", &s) {
                Err(PolicyError::Invalid { path: p, .. }) => assert_eq!(p, path),
                other => panic!("{other:?}"),
            }
        }
    }
}

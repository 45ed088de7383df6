//! The `v1.multus-cni.io/default-network` pod annotation: one network that replaces the
//! cluster network for that pod.

use crate::annotations::DEFAULT_NETWORK_ANNOTATION;
use crate::error::AnnotationError;
use crate::selection::{parse_selections, NetworkSelection};

/// Parses a `v1.multus-cni.io/default-network` value: `[namespace/]name`, the namespace
/// defaulting to `default_namespace` (the meta plugin's `multusNamespace`). An empty value
/// means no override; more than one network is an error.
///
/// Multus reads this annotation with its `networks` parser, so the JSON form and the other
/// selection fields are accepted here too and returned for the caller to honour or refuse.
pub fn parse_default_network_annotation(
    value: &str,
    default_namespace: &str,
) -> Result<Option<NetworkSelection>, AnnotationError> {
    let mut selections = parse_selections(DEFAULT_NETWORK_ANNOTATION, value, default_namespace)?;
    if selections.len() > 1 {
        return Err(AnnotationError::TooManyEntries {
            annotation: DEFAULT_NETWORK_ANNOTATION,
            value: value.to_owned(),
            count: selections.len(),
        });
    }
    Ok(selections.pop())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EntryProblem;

    fn parse(value: &str) -> Result<Option<NetworkSelection>, AnnotationError> {
        parse_default_network_annotation(value, "kube-system")
    }

    #[test]
    fn empty_means_no_override() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("  ").unwrap(), None);
    }

    #[test]
    fn namespace_defaults_to_the_given_one() {
        assert_eq!(
            parse("calico").unwrap(),
            Some(NetworkSelection::new("kube-system", "calico"))
        );
        assert_eq!(
            parse(" other/flannel.v2 ").unwrap(),
            Some(NetworkSelection::new("other", "flannel.v2"))
        );
        assert_eq!(
            parse(r#"{"name":"calico","namespace":"net"}"#).unwrap(),
            Some(NetworkSelection::new("net", "calico"))
        );
    }

    #[test]
    fn more_than_one_network_is_an_error() {
        let e = parse("a,b").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"v1.multus-cni.io/default-network annotation "a,b": 2 networks given, only one allowed"#
        );
        assert_eq!(e.value(), "a,b");
        assert!(parse(r#"[{"name":"a"},{"name":"b"}]"#).is_err());
    }

    #[test]
    fn names_are_validated_and_errors_name_this_annotation() {
        let e = parse("../etc").unwrap_err();
        assert_eq!(e.annotation(), DEFAULT_NETWORK_ANNOTATION);
        assert_eq!(e.field(), Some("namespace"));
        assert!(matches!(
            e,
            AnnotationError::Entry {
                index: 0,
                problem: EntryProblem::Invalid { .. },
                ..
            }
        ));
        assert!(parse("a/b/c").is_err());
        assert!(parse("Calico").is_err());
    }
}

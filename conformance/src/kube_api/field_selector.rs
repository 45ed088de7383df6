//! `fieldSelector` as kube-apiserver takes it for the fields the stand-in serves:
//! `metadata.name`, `metadata.namespace`, (pods, ResourceSlices) `spec.nodeName` and
//! (ResourceSlices) `spec.driver` and `spec.pool.name`, each with `=`, `==` or `!=`, joined by
//! commas. Any other field is refused with 400, as the real server refuses
//! a field label it does not support.

use serde_json::Value;

/// One requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    /// The field's path in the object, e.g. `["spec", "nodeName"]`.
    path: Vec<String>,
    /// The value compared with.
    value: String,
    /// `!=`.
    negated: bool,
}

/// A parsed `fieldSelector`; the default selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector {
    requirements: Vec<Requirement>,
}

const FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.driver",
    "spec.pool.name",
];

impl FieldSelector {
    /// Parses a selector (already URL-decoded); the message of a 400 when it is not one.
    pub(crate) fn parse(text: &str) -> Result<FieldSelector, String> {
        let mut requirements = Vec::new();
        for term in text.split(',').filter(|t| !t.is_empty()) {
            let (field, value, negated) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, v, false)
            } else {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                ));
            };
            if !FIELDS.contains(&field) {
                return Err(format!("field label not supported: {field}"));
            }
            requirements.push(Requirement {
                path: field.split('.').map(str::to_string).collect(),
                value: value.to_string(),
                negated,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Whether `object` meets every requirement (a missing field counts as `""`).
    pub(crate) fn selects(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let field = r
                .path
                .iter()
                .try_fold(object, |v, key| v.get(key))
                .and_then(Value::as_str)
                .unwrap_or("");
            (field == r.value) != r.negated
        })
    }
}

#[cfg(test)]
mod tests {
    use super::FieldSelector;
    use serde_json::json;

    #[test]
    fn selects_by_node_and_name() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}});
        let s = FieldSelector::parse("spec.nodeName=n1").unwrap();
        assert!(s.selects(&pod));
        assert!(!FieldSelector::parse("spec.nodeName=n2")
            .unwrap()
            .selects(&pod));
        assert!(FieldSelector::parse("spec.nodeName!=n2,metadata.name==p")
            .unwrap()
            .selects(&pod));
        assert!(FieldSelector::parse("").unwrap().selects(&pod));
        assert!(FieldSelector::parse("spec.hostname=x").is_err());
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}

//! A NAD's `spec.config`: one plugin, a plugin list, or nothing (the network then comes from a
//! file in `confDir`).

use serde_json::{Map, Value};

use crate::error::NadConfigError;

/// What a NAD's `spec.config` holds. The JSON keeps every key as written, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum NadConfig {
    /// `spec.config` is empty or whitespace.
    Empty,
    /// An object with `type`: a single plugin's netconf.
    Plugin(Value),
    /// An object without `type`: a conflist, whose `plugins` is a non-empty list of objects,
    /// each with a string `type`.
    ConfList(Value),
}

impl NadConfig {
    /// Parses `config`, the `spec.config` of the NAD called `nad_name`. A config without
    /// `name` (or with an empty or null one) is given `nad_name`, as Multus does.
    pub fn parse(nad_name: &str, config: &str) -> Result<NadConfig, NadConfigError> {
        if config.trim().is_empty() {
            return Ok(NadConfig::Empty);
        }
        let value: Value = serde_json::from_str(config).map_err(|e| NadConfigError::Json {
            nad: nad_name.to_owned(),
            reason: e.to_string(),
        })?;
        let invalid = |field: &str, value: &Value, reason| NadConfigError::Invalid {
            nad: nad_name.to_owned(),
            field: field.to_owned(),
            value: value.to_string(),
            reason,
        };
        let Value::Object(mut object) = value else {
            return Err(invalid("spec.config", &value, "must be a JSON object"));
        };
        match object.get("name") {
            None | Some(Value::Null) => {
                object.insert("name".to_owned(), nad_name.into());
            }
            Some(Value::String(name)) if name.is_empty() => {
                object.insert("name".to_owned(), nad_name.into());
            }
            Some(Value::String(_)) => {}
            Some(other) => return Err(invalid("spec.config.name", other, "must be a string")),
        }
        if let Some(plugin_type) = object.get("type") {
            check_type(plugin_type, "spec.config.type", &invalid)?;
            return Ok(NadConfig::Plugin(Value::Object(object)));
        }
        check_plugins(nad_name, &object, &invalid)?;
        Ok(NadConfig::ConfList(Value::Object(object)))
    }

    /// The JSON, unless [`NadConfig::Empty`].
    pub fn json(&self) -> Option<&Value> {
        match self {
            NadConfig::Empty => None,
            NadConfig::Plugin(json) | NadConfig::ConfList(json) => Some(json),
        }
    }
}

fn check_type(
    plugin_type: &Value,
    field: &str,
    invalid: &impl Fn(&str, &Value, &'static str) -> NadConfigError,
) -> Result<(), NadConfigError> {
    match plugin_type {
        Value::String(t) if !t.is_empty() => Ok(()),
        Value::String(_) => Err(invalid(field, plugin_type, "must not be empty")),
        _ => Err(invalid(field, plugin_type, "must be a string")),
    }
}

fn check_plugins(
    nad_name: &str,
    object: &Map<String, Value>,
    invalid: &impl Fn(&str, &Value, &'static str) -> NadConfigError,
) -> Result<(), NadConfigError> {
    let missing = |field: String, reason| NadConfigError::Missing {
        nad: nad_name.to_owned(),
        field,
        reason,
    };
    let plugins = match object.get("plugins") {
        None | Some(Value::Null) => {
            return Err(missing(
                "spec.config.plugins".to_owned(),
                "a config without \"type\" is a plugin list",
            ))
        }
        Some(Value::Array(plugins)) if plugins.is_empty() => {
            return Err(invalid(
                "spec.config.plugins",
                &Value::Array(Vec::new()),
                "must not be empty",
            ))
        }
        Some(Value::Array(plugins)) => plugins,
        Some(other) => return Err(invalid("spec.config.plugins", other, "must be a list")),
    };
    for (i, plugin) in plugins.iter().enumerate() {
        let field = format!("spec.config.plugins[{i}]");
        let Value::Object(plugin) = plugin else {
            return Err(invalid(&field, plugin, "must be an object"));
        };
        match plugin.get("type") {
            None => return Err(missing(format!("{field}.type"), "every plugin needs one")),
            Some(t) => check_type(t, &format!("{field}.type"), invalid)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(config: &str) -> Result<NadConfig, NadConfigError> {
        NadConfig::parse("net1", config)
    }

    fn error(config: &str) -> String {
        parse(config).unwrap_err().to_string()
    }

    #[test]
    fn empty_and_whitespace_are_empty() {
        assert_eq!(parse("").unwrap(), NadConfig::Empty);
        assert_eq!(parse(" \n\t").unwrap(), NadConfig::Empty);
        assert_eq!(NadConfig::Empty.json(), None);
    }

    #[test]
    fn a_config_with_type_is_a_plugin_and_keeps_its_keys_in_order() {
        let text = r#"{"cniVersion":"1.0.0","type":"bridge","zeta":1,"alpha":{"b":2,"a":1}}"#;
        let NadConfig::Plugin(json) = parse(text).unwrap() else {
            panic!("not a plugin")
        };
        // The NAD's name is appended; everything else stays as written.
        assert_eq!(
            json.to_string(),
            r#"{"cniVersion":"1.0.0","type":"bridge","zeta":1,"alpha":{"b":2,"a":1},"name":"net1"}"#
        );
    }

    #[test]
    fn a_given_name_wins_and_an_empty_one_is_replaced() {
        let named = parse(r#"{"name":"mine","type":"bridge"}"#).unwrap();
        assert_eq!(named.json().unwrap()["name"], "mine");
        let empty = parse(r#"{"name":"","type":"bridge"}"#).unwrap();
        assert_eq!(
            empty.json().unwrap().to_string(),
            r#"{"name":"net1","type":"bridge"}"#
        );
        let null = parse(r#"{"name":null,"type":"bridge"}"#).unwrap();
        assert_eq!(null.json().unwrap()["name"], "net1");
    }

    #[test]
    fn a_config_without_type_is_a_conflist() {
        let text =
            r#"{"cniVersion":"1.0.0","plugins":[{"type":"bridge"},{"type":"tuning","x":[1]}]}"#;
        assert_eq!(
            parse(text).unwrap(),
            NadConfig::ConfList(json!({
                "cniVersion": "1.0.0",
                "plugins": [{"type": "bridge"}, {"type": "tuning", "x": [1]}],
                "name": "net1"
            }))
        );
    }

    #[test]
    fn bad_configs_name_the_nad_and_the_field() {
        assert!(error("{")
            .starts_with("NetworkAttachmentDefinition \"net1\": spec.config is not valid JSON: "));
        assert_eq!(
            error("[1]"),
            "NetworkAttachmentDefinition \"net1\": spec.config [1]: must be a JSON object"
        );
        assert_eq!(
            error(r#"{"name":7,"type":"bridge"}"#),
            "NetworkAttachmentDefinition \"net1\": spec.config.name 7: must be a string"
        );
        assert_eq!(
            error(r#"{"type":7}"#),
            "NetworkAttachmentDefinition \"net1\": spec.config.type 7: must be a string"
        );
        assert_eq!(
            error(r#"{"type":""}"#),
            "NetworkAttachmentDefinition \"net1\": spec.config.type \"\": must not be empty"
        );
        assert_eq!(
            error(r#"{"cniVersion":"1.0.0"}"#),
            "NetworkAttachmentDefinition \"net1\": spec.config.plugins: missing \
             (a config without \"type\" is a plugin list)"
        );
        assert_eq!(
            error(r#"{"plugins":[]}"#),
            "NetworkAttachmentDefinition \"net1\": spec.config.plugins []: must not be empty"
        );
        assert_eq!(
            error(r#"{"plugins":{"type":"bridge"}}"#),
            "NetworkAttachmentDefinition \"net1\": spec.config.plugins {\"type\":\"bridge\"}: \
             must be a list"
        );
        assert_eq!(
            error(r#"{"plugins":["bridge"]}"#),
            "NetworkAttachmentDefinition \"net1\": spec.config.plugins[0] \"bridge\": \
             must be an object"
        );
        assert_eq!(
            error(r#"{"plugins":[{"mtu":1500}]}"#),
            "NetworkAttachmentDefinition \"net1\": spec.config.plugins[0].type: missing \
             (every plugin needs one)"
        );
        let later = parse(r#"{"plugins":[{"type":"bridge"},{"type":["x"]}]}"#).unwrap_err();
        assert_eq!(later.field(), "spec.config.plugins[1].type");
        assert_eq!(later.value(), Some(r#"["x"]"#));
        assert_eq!(later.nad(), "net1");
    }
}

//! Reading a JSON object key by key with its JSON path, so every refusal names where it is,
//! and whatever key is left over is refused as unknown (code 2).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::PolicyError;

/// A JSON object being read; keys are taken one by one, [`Fields::finish`] refuses the rest.
pub(crate) struct Fields {
    path: String,
    object: Map<String, Value>,
}

/// `path.key`, or `key` at the top.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

impl Fields {
    /// The object at `path`; code 6 when `value` is not an object.
    pub(crate) fn new(path: &str, value: Value) -> Result<Fields, PolicyError> {
        match value {
            Value::Object(object) => Ok(Fields {
                path: path.to_owned(),
                object,
            }),
            other => Err(PolicyError::invalid(path, other, "must be an object")),
        }
    }

    /// The path of key `key` of this object.
    pub(crate) fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Key `key` as a `T`, absent or `null` as `None`; code 7 naming the path when it is of
    /// the wrong type.
    pub(crate) fn take<T: DeserializeOwned>(
        &mut self,
        key: &str,
    ) -> Result<Option<T>, PolicyError> {
        match self.object.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|e| PolicyError::invalid(self.path_of(key), v, e.to_string())),
        }
    }

    /// Key `key` as raw JSON.
    pub(crate) fn take_value(&mut self, key: &str) -> Option<Value> {
        self.object.remove(key).filter(|v| !v.is_null())
    }

    /// Refuses the first key not taken (code 2), in the object's order.
    pub(crate) fn finish(self) -> Result<(), PolicyError> {
        match self.object.into_iter().next() {
            None => Ok(()),
            Some((key, value)) => Err(PolicyError::UnknownKey {
                path: join(&self.path, &key),
                value: value.to_string(),
            }),
        }
    }
}

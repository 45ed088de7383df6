//! JSON decoded into the protocol's types, a refusal naming the field at fault by its path
//! (`cniVersion: invalid type ...`, `ips[0].address: ...`), as libcni names it. Accepted
//! input is decoded exactly as serde_json does; only a refusal decodes again with the path
//! tracked (which costs a string per key), so the hot path pays nothing for the naming.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// `T` from `value`, else why not, with the field's path.
pub(crate) fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, String> {
    T::deserialize(value).map_err(
        |plain| match serde_path_to_error::deserialize::<_, T>(value) {
            Err(named) => named.to_string(),
            Ok(_) => plain.to_string(),
        },
    )
}

/// `T` from the JSON text `bytes`, else why not, with the field's path.
pub(crate) fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|plain: serde_json::Error| {
        let mut json = serde_json::Deserializer::from_slice(bytes);
        match serde_path_to_error::deserialize::<_, T>(&mut json) {
            Err(named) => named.to_string(),
            Ok(_) => plain.to_string(),
        }
    })
}

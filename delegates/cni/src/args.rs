//! `CNI_ARGS`: `K=V` pairs separated by `;`, with libcni's `IgnoreUnknown` rule.

use crate::error::Error;

/// Keys every runtime we know sends (kubelet through containerd or CRI-O, podman): never
/// "unknown", so their calls work even without `IgnoreUnknown`.
pub const RUNTIME_KEYS: &[&str] = &[
    "IgnoreUnknown",
    "K8S_POD_NAMESPACE",
    "K8S_POD_NAME",
    "K8S_POD_INFRA_CONTAINER_ID",
    "K8S_POD_UID",
];

/// Parsed `CNI_ARGS`, in their original order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pairs: Vec<(String, String)>,
}

impl CniArgs {
    /// Parses `CNI_ARGS`; a pair without exactly one `=` is code 4.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let mut pairs = Vec::new();
        for pair in raw.split(';').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((k, v)) if !k.is_empty() && !v.contains('=') => {
                    pairs.push((k.to_string(), v.to_string()))
                }
                _ => {
                    return Err(Error::environment(
                        "invalid CNI_ARGS",
                        format!("pair {pair:?} is not KEY=VALUE"),
                    ))
                }
            }
        }
        Ok(CniArgs { pairs })
    }

    /// The value of `key`, the last one if repeated.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All pairs in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Appends or replaces `key`.
    pub fn set(&mut self, key: &str, value: &str) {
        self.pairs.retain(|(k, _)| k != key);
        self.pairs.push((key.to_string(), value.to_string()));
    }

    /// Whether `IgnoreUnknown` is true (`1` or `true`, any case), as libcni reads it.
    pub fn ignore_unknown(&self) -> Result<bool, Error> {
        match self.get("IgnoreUnknown") {
            None => Ok(false),
            Some(v) if v == "1" || v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v == "0" || v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(Error::environment(
                "invalid CNI_ARGS",
                format!("IgnoreUnknown={v:?} is not a boolean"),
            )),
        }
    }

    /// Fails with code 4 naming every key that is neither a runtime key nor in `known`,
    /// unless `IgnoreUnknown` is set.
    pub fn check_known(&self, known: &[&str]) -> Result<(), Error> {
        if self.ignore_unknown()? {
            return Ok(());
        }
        let unknown: Vec<&str> = self
            .pairs
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !RUNTIME_KEYS.contains(k) && !known.contains(k))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(Error::environment(
                format!("unknown CNI_ARGS keys [{}]", unknown.join(", ")),
                "set IgnoreUnknown=1 to pass arguments this plugin does not use",
            ))
        }
    }

    /// Whether every pair comes back unchanged from the `K=V;K=V` form: true of what
    /// [`CniArgs::parse`] makes, not always of what [`CniArgs::set`] makes.
    pub fn fits_env(&self) -> bool {
        self.pairs
            .iter()
            .all(|(k, v)| !k.is_empty() && !k.contains(['=', ';']) && !v.contains(['=', ';']))
    }

    /// Whether there are no pairs (`CNI_ARGS` unset).
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Back to the `K=V;K=V` form.
    pub fn to_env(&self) -> String {
        let parts: Vec<String> = self.pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.join(";")
    }
}

/// Kept (in a cache, say) in the `K=V;K=V` form `CNI_ARGS` has.
impl serde::Serialize for CniArgs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_env())
    }
}

impl<'de> serde::Deserialize<'de> for CniArgs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        CniArgs::parse(&raw).map_err(|e| serde::de::Error::custom(e.msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let a = CniArgs::parse("IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.0.0.5").unwrap();
        assert_eq!(a.get("K8S_POD_NAME"), Some("web"));
        assert_eq!(a.to_env(), "IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.0.0.5");
        assert!(CniArgs::parse("").unwrap().pairs().next().is_none());
        assert!(a.fits_env());
        let mut b = a.clone();
        b.set("K", "x;y");
        assert!(!b.fits_env());
    }

    #[test]
    fn bad_pairs_are_code_4() {
        for bad in ["FOO", "=x", "A=b=c", "IgnoreUnknown=maybe"] {
            let e = CniArgs::parse(bad).and_then(|a| a.check_known(&[]).map(|_| a));
            assert_eq!(
                e.unwrap_err().code,
                crate::ErrorCode::INVALID_ENVIRONMENT,
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_keys_need_ignore_unknown() {
        let e = CniArgs::parse("FOO=bar;BAZ=1")
            .unwrap()
            .check_known(&[])
            .unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::INVALID_ENVIRONMENT);
        assert!(e.msg.contains("FOO, BAZ"), "{e}");
        for ok in [
            "FOO=bar;IgnoreUnknown=1",
            "IgnoreUnknown=true;FOO=bar",
            "IP=1.2.3.4",
        ] {
            CniArgs::parse(ok).unwrap().check_known(&["IP"]).unwrap();
        }
        // podman and containerd/kubelet, without IgnoreUnknown.
        CniArgs::parse(
            "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u",
        )
        .unwrap()
        .check_known(&[])
        .unwrap();
        assert!(CniArgs::parse("FOO=1;IgnoreUnknown=0")
            .unwrap()
            .check_known(&[])
            .is_err());
    }
}

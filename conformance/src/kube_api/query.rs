//! A request's query string as kube-apiserver reads it: `key=value` pairs joined by `&`,
//! `+` and `%XX` decoded; the last value of a key repeated wins.

/// The parameters of one query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

/// `%XX` and `+` decoded; a malformed escape is kept as it is.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    /// Parses `query` (without the `?`); `None` is the empty query.
    pub(crate) fn parse(query: Option<&str>) -> Query {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Query { pairs }
    }

    /// The value of `key`, if given.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` is a true boolean (`true` or `1`, as the server parses it).
    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

#[cfg(test)]
mod tests {
    use super::Query;

    #[test]
    fn pairs_are_decoded() {
        let q = Query::parse(Some(
            "&watch=true&fieldSelector=spec.nodeName%3Dnode-1&limit=500&x=a+b&watch=1",
        ));
        assert_eq!(q.get("fieldSelector"), Some("spec.nodeName=node-1"));
        assert_eq!(q.get("x"), Some("a b"));
        assert!(q.flag("watch"));
        assert!(!q.flag("allowWatchBookmarks"));
        assert_eq!(Query::parse(Some("a=%4")).get("a"), Some("%4"));
        assert_eq!(Query::parse(None), Query::default());
    }
}

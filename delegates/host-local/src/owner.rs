//! Who holds a reserved address, as its reservation file says: `<containerID>\r\n<ifname>`
//! (no trailing newline), or the container ID alone in files of old reference versions.

/// Separates the container ID from the interface name in a reservation file.
const LINE_BREAK: &str = "\r\n";

/// Who holds a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    /// The container ID.
    pub(crate) container_id: String,
    /// The interface name; `None` for the old id-only format.
    pub(crate) ifname: Option<String>,
}

impl Owner {
    /// Reads a reservation file's content (surrounding whitespace ignored, as the reference).
    pub(crate) fn parse(content: &str) -> Owner {
        let content = content.trim();
        match content.split_once(LINE_BREAK) {
            Some((id, ifname)) => Owner {
                container_id: id.to_string(),
                ifname: Some(ifname.to_string()),
            },
            None => Owner {
                container_id: content.to_string(),
                ifname: None,
            },
        }
    }

    /// The owner a new reservation of `(id, ifname)` gets (current format).
    pub(crate) fn new(id: &str, ifname: &str) -> Owner {
        Owner {
            container_id: id.trim().to_owned(),
            ifname: Some(ifname.to_owned()),
        }
    }

    /// The reservation file's content for this owner.
    pub(crate) fn content(&self) -> String {
        match &self.ifname {
            Some(ifname) => format!("{}{LINE_BREAK}{ifname}", self.container_id),
            None => self.container_id.clone(),
        }
    }

    /// Whether this is exactly `(id, ifname)` in the current format.
    pub(crate) fn is(&self, id: &str, ifname: &str) -> bool {
        self.container_id == id.trim() && self.ifname.as_deref() == Some(ifname)
    }

    /// Whether this is an old-format reservation of container `id`.
    pub(crate) fn is_legacy_of(&self, id: &str) -> bool {
        self.ifname.is_none() && self.container_id == id.trim()
    }

    /// Whether this belongs to `(id, ifname)` in either format.
    pub(crate) fn matches(&self, id: &str, ifname: &str) -> bool {
        self.is(id, ifname) || self.is_legacy_of(id)
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ifname {
            Some(ifname) => write!(f, "{}/{ifname}", self.container_id),
            None => f.write_str(&self.container_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_parsing() {
        assert_eq!(
            Owner::parse(" c1\r\neth0\n"),
            Owner {
                container_id: "c1".into(),
                ifname: Some("eth0".into())
            }
        );
        assert!(Owner::parse("c1\r\neth0").is("c1", "eth0"));
        assert!(!Owner::parse("c1\r\neth0").is_legacy_of("c1"));
        assert!(Owner::parse("c1").matches("c1", "eth9"));
        assert!(!Owner::parse("c1\r\neth1").matches("c1", "eth0"));
        assert_eq!(Owner::new("c1", "eth0").content(), "c1\r\neth0");
    }
}

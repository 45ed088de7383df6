//! `ipam.resolvConf`: a resolv.conf-format file turned into the result's `dns`, read the way
//! the reference reads it (first argument of `nameserver` and `domain`, every argument of
//! `search` and `options`, accumulated over lines; `#` and `;` lines skipped).

use std::path::Path;

use cni::{Dns, Error};

/// Reads and parses the file at `path`; a missing or unreadable file is an invalid config.
pub(crate) fn read(path: &Path) -> Result<Dns, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::invalid_config("ipam.resolvConf", path.display(), format!("read: {e}"))
    })?;
    Ok(parse(&text))
}

/// Parses resolv.conf text; unknown keywords and lines without an argument are ignored.
pub(crate) fn parse(text: &str) -> Dns {
    let mut dns = Dns::default();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(key), Some(first)) = (fields.next(), fields.next()) else {
            continue;
        };
        match key {
            "nameserver" => dns.nameservers.push(first.to_string()),
            "domain" => dns.domain = Some(first.to_string()),
            "search" => dns
                .search
                .extend(std::iter::once(first).chain(fields).map(String::from)),
            "options" => dns
                .options
                .extend(std::iter::once(first).chain(fields).map(String::from)),
            _ => {}
        }
    }
    dns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_keyword() {
        let dns = parse(
            "# comment\n; other comment\n\nnameserver 10.0.0.10\n  nameserver   fd00::53 extra\n\
             domain example.com\ndomain corp.example.com\nsearch a.example b.example\n\
             search c.example\noptions ndots:5 edns0\nsortlist 10.0.0.0\nnameserver\n",
        );
        assert_eq!(
            dns,
            Dns {
                nameservers: vec!["10.0.0.10".into(), "fd00::53".into()],
                domain: Some("corp.example.com".into()),
                search: vec!["a.example".into(), "b.example".into(), "c.example".into()],
                options: vec!["ndots:5".into(), "edns0".into()],
            }
        );
    }

    #[test]
    fn empty_file_is_empty_dns() {
        assert_eq!(parse(""), Dns::default());
    }

    #[test]
    fn missing_file_is_code_7_naming_the_field() {
        let e = read(Path::new("/nonexistent/resolv.conf")).unwrap_err();
        assert_eq!(e.code, cni::ErrorCode::INVALID_NETWORK_CONFIG);
        assert!(e.msg.contains("ipam.resolvConf"), "{e}");
    }
}

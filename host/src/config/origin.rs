//! Which origins a service may reach with outgoing HTTP. Deny by default: a
//! service's manifest lists them, e.g.
//! `allowed-outbound = ["http://127.0.0.1:9000"]`.

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, Result, bail};

/// One allowed origin: scheme, host and port, compared exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl FromStr for Origin {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Origin> {
        let uri: http::Uri = text
            .parse()
            .with_context(|| format!("{text:?} is not a URL like \"http://127.0.0.1:9000\""))?;
        let scheme = match uri.scheme_str() {
            Some(scheme @ ("http" | "https")) => scheme.to_string(),
            _ => bail!("{text:?} must start with http:// or https://"),
        };
        let Some(authority) = uri.authority() else {
            bail!("{text:?} has no host");
        };
        if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
            bail!("{text:?} must be an origin only (scheme, host and port), without a path");
        }
        Ok(Origin {
            port: authority
                .port_u16()
                .unwrap_or(if scheme == "https" { 443 } else { 80 }),
            host: authority.host().to_ascii_lowercase(),
            scheme,
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

impl Origin {
    /// The origin a request URI targets, if it names one.
    pub fn of(uri: &http::Uri) -> Option<Origin> {
        let scheme = uri.scheme_str()?.to_string();
        let authority = uri.authority()?;
        Some(Origin {
            port: authority
                .port_u16()
                .unwrap_or(if scheme == "https" { 443 } else { 80 }),
            host: authority.host().to_ascii_lowercase(),
            scheme,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_with_default_ports() {
        let origin: Origin = "http://127.0.0.1:9000".parse().unwrap();
        assert_eq!(origin.to_string(), "http://127.0.0.1:9000");
        let origin: Origin = "https://Example.com".parse().unwrap();
        assert_eq!(origin.to_string(), "https://example.com:443");
        let origin: Origin = "http://example.com/".parse().unwrap();
        assert_eq!(origin.to_string(), "http://example.com:80");
    }

    #[test]
    fn non_origins_are_rejected() {
        for bad in [
            "ftp://x",
            "127.0.0.1:9000",
            "http://x/path",
            "http://x/?q=1",
            "",
        ] {
            assert!(bad.parse::<Origin>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn request_uris_match_exactly() {
        let allowed: Origin = "http://127.0.0.1:9000".parse().unwrap();
        let same: http::Uri = "http://127.0.0.1:9000/some/path?q".parse().unwrap();
        let other_port: http::Uri = "http://127.0.0.1:9001/".parse().unwrap();
        assert_eq!(Origin::of(&same), Some(allowed.clone()));
        assert_ne!(Origin::of(&other_port), Some(allowed));
    }
}

//! Who may talk to an admin API that has no token. Binding to loopback
//! keeps other machines out, but not a web page open in the operator's
//! browser: by DNS rebinding it can address `evil.example` to 127.0.0.1, or
//! it can simply post a form to `http://127.0.0.1:9080`. So without a token
//! the admin API answers only requests whose `Host` names the listener by a
//! loopback name, and refuses writes whose `Origin` is another site.

use std::net::{IpAddr, SocketAddr};

use hyper::header::{HOST, ORIGIN};
use hyper::{Method, Request};

/// Checks `req` against the listener's `bound` address; `tls` says
/// whether the listener speaks HTTPS, the only scheme its own page can
/// send as its `Origin`.
pub fn check<B>(req: &Request<B>, bound: Option<&SocketAddr>, tls: bool) -> Result<(), String> {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let port = bound.map(SocketAddr::port);
    if !is_loopback_authority(host, port) {
        return Err(format!(
            "without a token the admin API only answers requests to a loopback address \
             (Host: 127.0.0.1, [::1] or localhost with the listener's port), not {host:?}"
        ));
    }
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if writes && let Some(origin) = req.headers().get(ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let scheme = if tls { "https://" } else { "http://" };
        let same = origin
            .strip_prefix(scheme)
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host));
        if !same {
            return Err(format!(
                "a write from another origin ({origin:?}) is refused; use `hive deploy` or set a token"
            ));
        }
    }
    Ok(())
}

/// `host[:port]` naming a loopback address (or `localhost`), with `port`
/// when one is given and known.
fn is_loopback_authority(authority: &str, port: Option<u16>) -> bool {
    let Ok(authority) = authority.parse::<http::uri::Authority>() else {
        return false;
    };
    let name = authority.host();
    let name = name
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(name);
    let loopback = name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let port_ok = match (authority.port_u16(), port) {
        (Some(given), Some(bound)) => given == bound,
        (None, Some(bound)) => bound == 80,
        (_, None) => true,
    };
    loopback && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, host: &str, origin: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().method(method).uri("/components");
        builder = builder.header(HOST, host);
        if let Some(origin) = origin {
            builder = builder.header(ORIGIN, origin);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn only_loopback_names_with_the_bound_port_are_answered() {
        let bound: SocketAddr = "127.0.0.1:9080".parse().unwrap();
        for good in [
            "127.0.0.1:9080",
            "localhost:9080",
            "[::1]:9080",
            "LOCALHOST:9080",
        ] {
            assert!(
                check(&request(Method::GET, good, None), Some(&bound), false).is_ok(),
                "{good}"
            );
        }
        for bad in [
            "evil.example:9080",
            "127.0.0.1:80",
            "localhost",
            "10.0.0.1:9080",
            "",
        ] {
            assert!(
                check(&request(Method::GET, bad, None), Some(&bound), false).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn writes_from_another_origin_are_refused() {
        let bound: SocketAddr = "127.0.0.1:9080".parse().unwrap();
        let host = "127.0.0.1:9080";
        let same = request(Method::PUT, host, Some("http://127.0.0.1:9080"));
        assert!(check(&same, Some(&bound), false).is_ok());
        let none = request(Method::DELETE, host, None);
        assert!(check(&none, Some(&bound), false).is_ok());
        let other = request(Method::PUT, host, Some("http://evil.example"));
        assert!(check(&other, Some(&bound), false).is_err());
        let null = request(Method::PUT, host, Some("null"));
        assert!(check(&null, Some(&bound), false).is_err());
        // Reading from another origin is harmless: the browser withholds
        // the answer from the page.
        // Over TLS the console's own origin is https, and http is not it.
        let secure = request(Method::PUT, host, Some("https://127.0.0.1:9080"));
        assert!(check(&secure, Some(&bound), true).is_ok());
        assert!(check(&secure, Some(&bound), false).is_err());
        assert!(check(&same, Some(&bound), true).is_err());
        let read = request(Method::GET, host, Some("http://evil.example"));
        assert!(check(&read, Some(&bound), false).is_ok());
    }
}

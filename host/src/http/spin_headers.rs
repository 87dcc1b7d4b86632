//! The request headers Spin sets on every HTTP request it hands a
//! component, set by Hive on the `wasi:http` requests of a component built
//! for Spin (see `runtime/spin_sdk.rs`), so that spin-sdk's `Router` and
//! Spin's templates work unchanged. Any other component is not handed
//! them: it would pay for every header it does not read. Whatever a client
//! sent under these names is removed first either way, so a component can
//! trust them.

use http::header::{HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Request};

/// Every Spin header starts so; a client's are dropped.
const PREFIX: &str = "spin-";

const FULL_URL: HeaderName = HeaderName::from_static("spin-full-url");
const PATH_INFO: HeaderName = HeaderName::from_static("spin-path-info");
const MATCHED_ROUTE: HeaderName = HeaderName::from_static("spin-matched-route");
const BASE_PATH: HeaderName = HeaderName::from_static("spin-base-path");
const COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-component-route");
const RAW_COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-raw-component-route");
const CLIENT_ADDR: HeaderName = HeaderName::from_static("spin-client-addr");

/// Replaces any `spin-*` headers of `req` with Spin's own, for a request
/// that matched `route` (a Hive route pattern) with `params`, from
/// `client` (the peer's address, when known).
pub fn set<B>(
    req: &mut Request<B>,
    route: &str,
    params: &[(String, String)],
    client: Option<std::net::SocketAddr>,
) {
    let full_url = match req.uri().authority() {
        Some(_) => req.uri().to_string(),
        None => {
            let host = req
                .headers()
                .get(HOST)
                .and_then(|host| host.to_str().ok())
                .unwrap_or("localhost");
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
            format!("http://{host}{path}")
        }
    };
    let path_info = path_info(route, req.uri().path()).to_string();
    let component_route = match route.strip_suffix("/...") {
        Some("") => "/",
        Some(fixed) => fixed,
        None => route,
    };
    let headers = req.headers_mut();
    strip(headers);
    let mut put = |name: HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put(FULL_URL, &full_url);
    put(PATH_INFO, &path_info);
    put(MATCHED_ROUTE, route);
    put(COMPONENT_ROUTE, component_route);
    put(RAW_COMPONENT_ROUTE, route);
    if let Some(client) = client {
        put(CLIENT_ADDR, &client.to_string());
    }
    for (name, value) in params {
        let name = format!("spin-path-match-{}", name.to_ascii_lowercase());
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            put(name, value);
        }
    }
    headers.insert(BASE_PATH, HeaderValue::from_static("/"));
}

/// Removes every header named `spin-*`.
pub fn strip(headers: &mut HeaderMap) {
    let theirs: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(PREFIX))
        .cloned()
        .collect();
    for name in theirs {
        headers.remove(name);
    }
}

/// What of `path` follows the segments `route` names: `/b/c` for
/// `/a/...` and `/a/b/c`, empty for a route without `...`.
fn path_info<'a>(route: &str, path: &'a str) -> &'a str {
    let Some(fixed) = route.strip_suffix("/...") else {
        return "";
    };
    let segments = fixed.split('/').count() - 1;
    let mut rest = path;
    for _ in 0..segments {
        let after_slash = rest.strip_prefix('/').unwrap_or(rest);
        rest = match after_slash.find('/') {
            Some(end) => &after_slash[end..],
            None => "",
        };
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_info_is_what_follows_the_route() {
        assert_eq!(path_info("/spin/...", "/spin/hello/bob"), "/hello/bob");
        assert_eq!(path_info("/a/:id/...", "/a/7/b/c"), "/b/c");
        assert_eq!(path_info("/...", "/x/y"), "/x/y");
        assert_eq!(path_info("/hello/:name", "/hello/bob"), "");
    }

    #[test]
    fn clients_cannot_set_spin_headers_and_spins_are_set() {
        let mut req = Request::builder()
            .uri("/spin/hello/bob?x=1")
            .header("host", "example.com:8080")
            .header("spin-path-info", "/forged")
            .header("spin-anything", "forged")
            .body(())
            .unwrap();
        let client = "127.0.0.1:5000".parse().ok();
        let params = [("name".to_string(), "bob".to_string())];
        set(&mut req, "/spin/...", &params, client);
        let header = |name: &str| req.headers().get(name).map(|v| v.to_str().unwrap());
        assert_eq!(header("spin-path-info"), Some("/hello/bob"));
        assert_eq!(header("spin-anything"), None);
        assert_eq!(
            header("spin-full-url"),
            Some("http://example.com:8080/spin/hello/bob?x=1")
        );
        assert_eq!(header("spin-component-route"), Some("/spin"));
        assert_eq!(header("spin-raw-component-route"), Some("/spin/..."));
        assert_eq!(header("spin-matched-route"), Some("/spin/..."));
        assert_eq!(header("spin-base-path"), Some("/"));
        assert_eq!(header("spin-client-addr"), Some("127.0.0.1:5000"));
        assert_eq!(header("spin-path-match-name"), Some("bob"));
    }
}

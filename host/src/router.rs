//! Maps request paths to services.
//!
//! A route pattern is a path whose segments are literals, `:name` parameters
//! (one non-empty segment, whose value reaches the service), or a final `...`
//! that matches one or more further segments (`/a/...` matches `/a/` and
//! `/a/b/c`, not `/a`). When several patterns match, the most specific wins:
//! segments are compared left to right, a literal beating a parameter beating
//! `...`. Two patterns that would match exactly the same paths conflict.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Result, bail};
use percent_encoding::percent_decode_str;

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Matches exactly this text (as it appears in the raw request path).
    Literal(String),
    /// Matches any one non-empty segment and captures it under this name.
    Param(String),
}

/// A parsed route such as `/users/:id/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    raw: Arc<str>,
    segments: Vec<Segment>,
    /// Ends in `...`: matches any path that continues past `segments`.
    prefix: bool,
}

impl FromStr for RoutePattern {
    type Err = anyhow::Error;

    fn from_str(raw: &str) -> Result<RoutePattern> {
        let Some(rest) = raw.strip_prefix('/') else {
            bail!("a route must start with '/'");
        };
        if raw.contains(['?', '#']) {
            bail!("a route must not contain '?' or '#'");
        }
        let mut parts: Vec<&str> = rest.split('/').collect();
        let prefix = parts.last() == Some(&"...");
        if prefix {
            parts.pop();
        }
        let mut segments = Vec::with_capacity(parts.len());
        for part in parts {
            if part == "..." {
                bail!("'...' may only be the last segment");
            }
            if let Some(name) = part.strip_prefix(':') {
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid {
                    bail!("parameter {part:?} needs a name of letters, digits, '_' or '-'");
                }
                if segments.contains(&Segment::Param(name.to_string())) {
                    bail!("parameter {part:?} appears twice");
                }
                segments.push(Segment::Param(name.to_string()));
            } else {
                segments.push(Segment::Literal(part.to_string()));
            }
        }
        Ok(RoutePattern {
            raw: raw.into(),
            segments,
            prefix,
        })
    }
}

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl RoutePattern {
    /// The pattern as written, e.g. `/hello/:name`.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The same text, shared: a request keeps it for its log line without
    /// copying it.
    pub fn shared(&self) -> Arc<str> {
        self.raw.clone()
    }

    /// Whether the pattern matches the split path segments. Allocates
    /// nothing: parameters are decoded only for the route that wins.
    fn matches(&self, path: &[&str]) -> bool {
        let fits = if self.prefix {
            path.len() > self.segments.len()
        } else {
            path.len() == self.segments.len()
        };
        fits && self
            .segments
            .iter()
            .zip(path)
            .all(|(segment, actual)| match segment {
                Segment::Literal(text) => text == actual,
                Segment::Param(_) => !actual.is_empty(),
            })
    }

    /// The `(name, value)` pairs for a path this pattern matches. A value
    /// that does not decode to UTF-8 is an error naming its parameter: a
    /// lossy decoding would map different paths to the same value.
    fn params(&self, path: &[&str]) -> Result<Vec<(String, String)>, InvalidParam> {
        let mut params = Vec::new();
        for (segment, actual) in self.segments.iter().zip(path) {
            if let Segment::Param(name) = segment {
                let value = percent_decode_str(actual)
                    .decode_utf8()
                    .map_err(|_| InvalidParam { name: name.clone() })?;
                params.push((name.clone(), value.into_owned()));
            }
        }
        Ok(params)
    }

    /// The first segment when it is a literal: the key the router indexes
    /// routes by.
    fn first_literal(&self) -> Option<&str> {
        match self.segments.first() {
            Some(Segment::Literal(text)) => Some(text),
            _ => None,
        }
    }

    /// Rank of each position: literal 3, parameter 2, trailing `...` 1.
    /// Of two patterns matching the same path, the larger sequence wins.
    fn specificity(&self) -> impl Iterator<Item = u8> + '_ {
        let ranks = self.segments.iter().map(|segment| match segment {
            Segment::Literal(_) => 3,
            Segment::Param(_) => 2,
        });
        ranks.chain(self.prefix.then_some(1))
    }

    fn more_specific_than(&self, other: &RoutePattern) -> bool {
        self.specificity().cmp(other.specificity()) == Ordering::Greater
    }

    /// Whether both patterns match exactly the same set of paths.
    pub fn overlaps_exactly(&self, other: &RoutePattern) -> bool {
        self.prefix == other.prefix
            && self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|pair| match pair {
                    (Segment::Literal(a), Segment::Literal(b)) => a == b,
                    (Segment::Param(_), Segment::Param(_)) => true,
                    _ => false,
                })
    }
}

/// Splits a request path (which starts with `/`) into raw segments.
fn split_path(path: &str) -> Vec<&str> {
    path.strip_prefix('/').unwrap_or(path).split('/').collect()
}

/// The outcome of a successful lookup.
#[derive(Debug)]
pub struct RouteMatch<'a, T> {
    /// Whatever the route was registered with (the service).
    pub target: &'a T,
    /// The pattern that matched.
    pub pattern: &'a RoutePattern,
    /// `(name, value)` for each `:name` segment, percent-decoded; an error
    /// when a value is not UTF-8 once decoded.
    pub params: Result<Vec<(String, String)>, InvalidParam>,
}

/// A path parameter whose percent-decoded value is not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidParam {
    /// The parameter's name in the route.
    pub name: String,
}

/// A route already taken, returned when inserting a conflicting one.
#[derive(Debug)]
pub struct Conflict<'a, T> {
    /// The owner of the existing route.
    pub owner: &'a T,
    /// The existing route.
    pub pattern: &'a RoutePattern,
}

/// A set of routes, each pointing at a target of type `T`.
///
/// Routes are indexed by their first segment when it is a literal, so a
/// lookup only tries the routes that could match that segment plus those
/// starting with a parameter or `...`.
#[derive(Debug, Clone)]
pub struct Router<T> {
    routes: Vec<(RoutePattern, T)>,
    /// Indexes into `routes`, by literal first segment.
    by_first: HashMap<String, Vec<usize>>,
    /// Indexes of routes whose first segment is not a literal.
    unindexed: Vec<usize>,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router {
            routes: Vec::new(),
            by_first: HashMap::new(),
            unindexed: Vec::new(),
        }
    }
}

impl<T> Router<T> {
    /// An empty router.
    pub fn new() -> Self {
        Router::default()
    }

    /// The existing route that `pattern` would conflict with, if any.
    pub fn conflict(&self, pattern: &RoutePattern) -> Option<Conflict<'_, T>> {
        self.routes
            .iter()
            .find(|(existing, _)| existing.overlaps_exactly(pattern))
            .map(|(existing, owner)| Conflict {
                owner,
                pattern: existing,
            })
    }

    /// Adds a route, refusing one that conflicts with an existing route.
    pub fn insert(&mut self, pattern: RoutePattern, target: T) -> Result<(), Conflict<'_, T>> {
        if let Some(index) = self
            .routes
            .iter()
            .position(|(existing, _)| existing.overlaps_exactly(&pattern))
        {
            let (pattern, owner) = &self.routes[index];
            return Err(Conflict { owner, pattern });
        }
        let index = self.routes.len();
        match pattern.first_literal() {
            Some(first) => self
                .by_first
                .entry(first.to_string())
                .or_default()
                .push(index),
            None => self.unindexed.push(index),
        }
        self.routes.push((pattern, target));
        Ok(())
    }

    /// The most specific route matching `path`.
    pub fn lookup(&self, path: &str) -> Option<RouteMatch<'_, T>> {
        let segments = split_path(path);
        let indexed = segments
            .first()
            .and_then(|first| self.by_first.get(*first))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut best: Option<&(RoutePattern, T)> = None;
        for &index in indexed.iter().chain(&self.unindexed) {
            let candidate = &self.routes[index];
            if candidate.0.matches(&segments)
                && best.is_none_or(|current| candidate.0.more_specific_than(&current.0))
            {
                best = Some(candidate);
            }
        }
        best.map(|(pattern, target)| RouteMatch {
            target,
            pattern,
            params: pattern.params(&segments),
        })
    }

    /// Every route with its target, in insertion order.
    pub fn routes(&self) -> impl Iterator<Item = (&RoutePattern, &T)> {
        self.routes
            .iter()
            .map(|(pattern, target)| (pattern, target))
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &'static str)]) -> Router<&'static str> {
        let mut router = Router::new();
        for (pattern, target) in routes {
            router
                .insert(pattern.parse().unwrap(), *target)
                .map_err(|c| c.pattern.to_string())
                .unwrap();
        }
        router
    }

    fn hit(router: &Router<&'static str>, path: &str) -> Option<&'static str> {
        router.lookup(path).map(|m| *m.target)
    }

    #[test]
    fn exact_routes_match_only_themselves() {
        let r = router(&[("/foo", "foo")]);
        assert_eq!(hit(&r, "/foo"), Some("foo"));
        assert_eq!(hit(&r, "/foo/"), None);
        assert_eq!(hit(&r, "/foo/bar"), None);
        assert_eq!(hit(&r, "/foobar"), None);
        assert_eq!(hit(&r, "/"), None);
    }

    #[test]
    fn prefix_routes_need_something_after_the_prefix() {
        let r = router(&[("/foo/...", "foo")]);
        assert_eq!(hit(&r, "/foo"), None);
        assert_eq!(hit(&r, "/foo/"), Some("foo"));
        assert_eq!(hit(&r, "/foo/a/b/c"), Some("foo"));
        assert_eq!(hit(&r, "/food/a"), None);
    }

    #[test]
    fn root_and_catch_all() {
        let r = router(&[("/", "root"), ("/...", "all")]);
        assert_eq!(hit(&r, "/"), Some("root"));
        assert_eq!(hit(&r, "/anything/at/all"), Some("all"));
    }

    #[test]
    fn params_capture_decoded_values() {
        let r = router(&[("/users/:id/posts/:post", "posts")]);
        let m = r.lookup("/users/42/posts/caf%C3%A9").unwrap();
        assert_eq!(
            m.params,
            Ok(vec![
                ("id".to_string(), "42".to_string()),
                ("post".to_string(), "café".to_string())
            ])
        );
        assert_eq!(m.pattern.as_str(), "/users/:id/posts/:post");
    }

    #[test]
    fn params_that_are_not_utf8_once_decoded_are_errors_not_lossy_values() {
        let r = router(&[("/users/:id", "users")]);
        for path in ["/users/%ff", "/users/%fe", "/users/a%c3"] {
            let m = r.lookup(path).unwrap();
            assert_eq!(
                m.params,
                Err(InvalidParam {
                    name: "id".to_string()
                }),
                "{path}"
            );
        }
    }

    #[test]
    fn params_do_not_match_empty_segments() {
        let r = router(&[("/hello/:name", "named"), ("/hello/...", "rest")]);
        assert_eq!(hit(&r, "/hello/ana"), Some("named"));
        assert_eq!(hit(&r, "/hello/"), Some("rest"));
    }

    #[test]
    fn most_specific_wins_regardless_of_order() {
        let routes = [
            ("/...", "all"),
            ("/a/...", "a-any"),
            ("/a/:x", "a-param"),
            ("/a/b", "a-b"),
            ("/a/:x/...", "a-param-any"),
            ("/:x/b", "param-b"),
        ];
        for reversed in [false, true] {
            let mut ordered = routes.to_vec();
            if reversed {
                ordered.reverse();
            }
            let r = router(&ordered);
            assert_eq!(hit(&r, "/a/b"), Some("a-b"));
            assert_eq!(hit(&r, "/a/c"), Some("a-param"));
            assert_eq!(hit(&r, "/a/c/d"), Some("a-param-any"));
            assert_eq!(hit(&r, "/z/b"), Some("param-b"));
            assert_eq!(hit(&r, "/z/c"), Some("all"));
            assert_eq!(hit(&r, "/a/"), Some("a-any"));
        }
    }

    #[test]
    fn same_shape_conflicts_even_with_other_param_names() {
        let mut r = router(&[("/a/:x", "first")]);
        let err = r.insert("/a/:y".parse().unwrap(), "second").unwrap_err();
        assert_eq!(*err.owner, "first");
        assert_eq!(err.pattern.as_str(), "/a/:x");
        assert!(r.insert("/a/...".parse().unwrap(), "third").is_ok());
        assert!(r.insert("/a/b".parse().unwrap(), "fourth").is_ok());
        assert!(r.conflict(&"/a/b".parse().unwrap()).is_some());
        assert!(r.conflict(&"/a/b/c".parse().unwrap()).is_none());
    }

    #[test]
    fn invalid_patterns_are_rejected() {
        for bad in [
            "", "foo", "/a/.../b", "/:", "/:a/:a", "/a?b", "/a#b", "/:na me",
        ] {
            assert!(bad.parse::<RoutePattern>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn display_round_trips() {
        for good in ["/", "/a", "/a/:b/...", "/..."] {
            assert_eq!(good.parse::<RoutePattern>().unwrap().to_string(), good);
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_route_text_parses_or_errors_and_round_trips(text in "\\PC{0,40}") {
                if let Ok(pattern) = text.parse::<RoutePattern>() {
                    prop_assert_eq!(pattern.to_string(), text.clone());
                    prop_assert_eq!(pattern.as_str().parse::<RoutePattern>().unwrap(), pattern);
                }
            }

            #[test]
            fn any_path_is_looked_up_without_panicking(path in "/[\\PC%]{0,60}") {
                let r = router(&[("/users/:id", "users"), ("/a/...", "a"), ("/", "root"), ("/:x/:y", "two")]);
                if let Some(found) = r.lookup(&path) {
                    // Values decode exactly, or the lookup says which
                    // parameter does not.
                    match found.params {
                        Ok(params) => {
                            let names: Vec<&str> = params.iter().map(|(name, _)| name.as_str()).collect();
                            let expected: Vec<&str> = match *found.target {
                                "users" => vec!["id"],
                                "two" => vec!["x", "y"],
                                _ => vec![],
                            };
                            prop_assert_eq!(names, expected);
                        }
                        Err(invalid) => prop_assert!(["id", "x", "y"].contains(&invalid.name.as_str())),
                    }
                }
            }

            #[test]
            fn literal_routes_find_their_own_path(
                segments in proptest::collection::vec("[a-z0-9]{1,6}", 1..5)
            ) {
                let path = format!("/{}", segments.join("/"));
                let r = router(&[(path.as_str(), "it"), ("/...", "all")]);
                prop_assert_eq!(hit(&r, &path), Some("it"));
            }
        }
    }
}

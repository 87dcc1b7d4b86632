//! Serves standard `wasi:http` components, WASI 0.2 (`wasi:http/proxy`,
//! built for `wasmtime serve`, Spin, wasmCloud, ...) and WASI 0.3
//! (`wasi:http/service`), through the same router, limits and logs as Hive
//! services. Bodies stream both ways: the request body is fed to the guest
//! as it arrives, and the response goes to the client while the guest is
//! still writing it, so neither has to fit in the instance's memory. The
//! two versions differ only in how the guest is called ([`run`],
//! [`run_p3`], and [`run_shared`] for 0.3 instances that serve several
//! requests at once); what happens around the call is the same.

use std::sync::Arc;

use http::uri::{self, Authority, Uri};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::{Request, StatusCode};
use serde_json::json;
use tokio::sync::oneshot;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{ExpirationError, TrapOrPanicError};
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p3::Request as P3Request;
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode as P3ErrorCode;

use super::body::{HttpBody, HttpResponse};
use super::drained::{Drained, DrainedFlag};
use super::guarded_body::GuardedBody;
use super::guest_run::GuestRun;
use super::prepend::Prepend;
use super::problem::{close_if_unread, failed, failure_response, problem};
use super::request_span::RequestTrace;
use crate::host::Host;
use crate::runtime::Runtime;
use crate::runtime::call::{Caller, acquire_slot, call};
use crate::runtime::failure::{Failure, FailureKind};
use crate::runtime::failure_mark::FailureMark;
use crate::runtime::service::Service;
use crate::runtime::shared::Admitted;
use crate::runtime::world::World;

/// What a `wasi:http` component sets as its response: a head with a
/// streaming body, or an error code (of its WASI version).
pub type ResponseHead<E = ErrorCode> = Result<hyper::Response<HttpBody>, E>;

/// Where a WASI 0.2 component's response head is sent.
pub type ResponseSender = oneshot::Sender<ResponseHead>;

/// Where a WASI 0.3 component's response head is sent.
pub type P3ResponseSender = oneshot::Sender<ResponseHead<P3ErrorCode>>;

/// Handles one request with a `wasi:http` component. Returns the response
/// and the call's failure mark, which says, once the body has streamed,
/// whether the call failed after its head went out.
pub async fn serve(
    host: &Arc<Host>,
    service: &Arc<Service>,
    req: Request<Incoming>,
    request_id: &Arc<str>,
) -> (HttpResponse, FailureMark) {
    let mark = FailureMark::default();
    // Whether a body comes with the request: an answer the host makes
    // itself may leave it unread.
    let unread = !req.body().is_end_stream();
    if let Err(reason) = check_authority(&req) {
        let response = problem(StatusCode::BAD_REQUEST, Some(request_id), reason, json!({}));
        return (close_if_unread(response, unread), mark);
    }
    let limits = &service.info.limits;
    let limit = limits.request_body_bytes;
    if req.body().size_hint().lower() > limit as u64 {
        let response = problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            Some(request_id),
            "request body too large",
            json!({ "limit_bytes": limit }),
        );
        return (close_if_unread(response, true), mark);
    }
    // A streamed body is cut off at the limit instead; the cut marks the
    // call failed, so the client never sees a response that looks whole.
    // Only a request that brings a body needs to learn whether it was read.
    let drained = unread.then(DrainedFlag::default);
    let req = req.map(|body| match &drained {
        Some(flag) => limited(
            Drained::new(body, flag.clone()).lingering(linger),
            limit,
            mark.clone(),
        ),
        None => limited(body, limit, mark.clone()),
    });

    let outcome = match service.entry.world() {
        World::P3 => {
            let (sender, receiver) = oneshot::channel();
            let req = with_absolute_uri(req);
            let guest = if service.info.limits.instance_concurrency > 1 {
                Guest::Shared(req, sender)
            } else {
                Guest::P3(req, sender)
            };
            let run = guest_run(host, service, request_id, guest, &mark);
            respond(receiver, run, &mark, host, service, request_id).await
        }
        World::Proxy | World::Service | World::Worker => {
            let (sender, receiver) = oneshot::channel();
            let guest = Guest::P2(req, sender);
            let run = guest_run(host, service, request_id, guest, &mark);
            respond(receiver, run, &mark, host, service, request_id).await
        }
    };
    let response = match outcome {
        // The guest's own answer: whatever of the body it had not read when
        // the head went out counts as left unread (it may read on while the
        // response streams, but hyper cannot be told that in time).
        Ok(answer) => close_if_unread(answer, drained.is_some_and(|flag| !flag.is_drained())),
        Err(made) => close_if_unread(made, unread),
    };
    (response, mark)
}

/// `body` as the guest reads it: cut off after `limit` bytes, which marks
/// the call failed (`cut`).
fn limited<B>(body: B, limit: usize, cut: FailureMark) -> HttpBody
where
    B: Body<Data = bytes::Bytes, Error = hyper::Error> + Send + 'static,
{
    Limited::new(body, limit)
        .map_err(move |err| match err.downcast::<hyper::Error>() {
            Ok(err) => wasmtime_wasi_http::Error::Hyper(*err),
            Err(err) if err.is::<LengthLimitError>() => {
                cut.set(FailureKind::RequestTooLarge);
                wasmtime_wasi_http::Error::HttpRequestBodySize(Some(limit as u64))
            }
            Err(_) => wasmtime_wasi_http::Error::HttpRequestBodySize(None),
        })
        .boxed_unsync()
}

/// The response for the head the guest sets on `receiver`: held until the
/// body's first frame, then streamed; or (`Err`) the host's answer for the
/// failure that came first. The guest's call runs alongside, on this task,
/// until then (see [`GuestRun`]).
async fn respond<E: std::fmt::Debug>(
    receiver: oneshot::Receiver<ResponseHead<E>>,
    mut run: GuestRun,
    mark: &FailureMark,
    host: &Host,
    service: &Service,
    request_id: &str,
) -> Result<HttpResponse, HttpResponse> {
    let component = service.name();
    match run.alongside(receiver).await {
        Ok(Ok(response)) => {
            let (parts, body) = response.into_parts();
            let mut body = GuardedBody::new(body, mark.clone());
            // Hold the head until the body's first frame (or its end): until
            // a byte has gone out, a failure can still be answered properly.
            let first = run.alongside(body.frame()).await;
            if mark.is_set() {
                return Err(failure_after_head(run, mark, host, component, request_id).await);
            }
            // A call still writing the body goes on on a task of its own:
            // hyper polls the body only as fast as the client reads, and
            // the call's deadline must hold whatever the client does.
            run.detach();
            let cap = service.info.limits.response_body_bytes;
            let body = Prepend::new(first, body);
            let body = Limited::new(body, cap)
                .map_err(
                    move |err| match err.downcast::<wasmtime_wasi_http::Error>() {
                        Ok(err) => *err,
                        Err(_) => wasmtime_wasi_http::Error::HttpResponseBodySize(Some(cap as u64)),
                    },
                )
                .boxed_unsync();
            Ok(HttpResponse::from_parts(parts, body))
        }
        Ok(Err(code)) => {
            run.detach();
            Err(problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(request_id),
                "the component answered with an error",
                json!({ "component": component, "error_code": format!("{code:?}") }),
            ))
        }
        // The guest dropped the response without setting it: its call's
        // result says why (trap, timeout, ...).
        Err(_) => Err(failure_after_head(run, mark, host, component, request_id).await),
    }
}

/// WASI 0.3 hands the guest the request's scheme and authority from its
/// URI only (it drops `Host`, a forbidden header there), and a server's
/// request URI is a bare path: make it absolute from `Host`.
fn with_absolute_uri(mut req: http::Request<HttpBody>) -> http::Request<HttpBody> {
    // An absolute URI needs nothing; the asterisk form (`OPTIONS *`) has
    // no path to put under an authority.
    if req.uri().authority().is_some() || !req.uri().path().starts_with('/') {
        return req;
    }
    // Built from parts, not by formatting and parsing a string: the path is
    // kept as it is, and only the authority is read.
    let host = req.headers().get(hyper::header::HOST);
    let Some(authority) = host.and_then(|host| Authority::try_from(host.as_bytes()).ok()) else {
        return req;
    };
    let mut parts = req.uri().clone().into_parts();
    parts.scheme = Some(uri::Scheme::HTTP);
    parts.authority = Some(authority);
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    req
}

/// How to call the guest, by WASI version: the request and where its
/// response head goes.
enum Guest {
    P2(http::Request<HttpBody>, ResponseSender),
    P3(http::Request<HttpBody>, P3ResponseSender),
    /// WASI 0.3 on an instance shared with other requests.
    Shared(http::Request<HttpBody>, P3ResponseSender),
}

/// The guest's call for one request. It records the call's failure
/// itself, whenever it comes (a trap mid-body, the timeout, a request body
/// cut at its limit): one after the head has no response left to go in,
/// and must still be counted and logged.
fn guest_run(
    host: &Arc<Host>,
    service: &Arc<Service>,
    request_id: &Arc<str>,
    guest: Guest,
    mark: &FailureMark,
) -> GuestRun {
    let (host, service, request_id, mark) = (
        host.clone(),
        service.clone(),
        request_id.clone(),
        mark.clone(),
    );
    GuestRun::new(async move {
        let (runtime, id, mark_for_call) = (&host.runtime, &request_id, mark.clone());
        let mut result = match guest {
            Guest::P2(req, sender) => run(runtime, &service, id, req, sender, mark_for_call).await,
            Guest::P3(req, sender) => {
                run_p3(runtime, &service, id, req, sender, mark_for_call).await
            }
            Guest::Shared(req, sender) => {
                run_shared(runtime, &service, id, req, sender, mark_for_call).await
            }
        };
        // A cut request body is the cause even when the guest then trapped
        // on the read that failed.
        if mark.kind() == Some(FailureKind::RequestTooLarge) {
            let limit = service.info.limits.request_body_bytes;
            result = Err(Failure::with_detail(
                FailureKind::RequestTooLarge,
                format!("the request body went over {limit} bytes and was cut off"),
            ));
        }
        if let Err(failure) = &result {
            failure.record(host.metrics(), service.name(), &request_id);
        }
        result
    })
}

/// The response when the call failed before any byte of the response went
/// out: the failure as the call recorded it (500 `trap`, 504, 413 ...).
async fn failure_after_head(
    run: GuestRun,
    mark: &FailureMark,
    host: &Host,
    component: &str,
    request_id: &str,
) -> HttpResponse {
    match run.finish().await {
        Err(failure) => failure_response(&failure, component, request_id),
        // The call itself went well, so it recorded nothing.
        Ok(()) => {
            let failure = Failure::with_detail(
                FailureKind::InvalidResponse,
                "it returned without setting a response",
            );
            mark.set(failure.kind);
            failed(host.metrics(), &failure, component, request_id)
        }
    }
}

/// wasi:http hands the guest the request's authority, from the URI or the
/// `Host` header; one that is missing or not a valid authority is the
/// client's mistake (400), not a failure of the component.
fn check_authority<B>(req: &Request<B>) -> Result<(), &'static str> {
    if req.uri().authority().is_some() {
        return Ok(());
    }
    let Some(host) = req.headers().get(hyper::header::HOST) else {
        return Err("the request has no Host header");
    };
    match http::uri::Authority::try_from(host.as_bytes()) {
        Ok(authority) if !authority.as_str().is_empty() => Ok(()),
        _ => Err("the request's Host header is not a valid host[:port]"),
    }
}

/// Most of a body its guest left unread the host still reads (and drops)
/// after answering, and for how long: enough for a client to finish sending
/// an ordinary body and read the answer rather than a reset.
const LINGER_BYTES: usize = 4 << 20;
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads what is left of `body` in the background, within [`LINGER_BYTES`]
/// and [`LINGER_TIME`], discarding it.
fn linger(body: Incoming) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut rest = Limited::new(body, LINGER_BYTES);
        let _ = tokio::time::timeout(LINGER_TIME, async {
            while let Some(Ok(_)) = rest.frame().await {}
        })
        .await;
    });
}

/// Runs `incoming-handler.handle` for `request` on an instance of
/// `service`: the response head goes to `sender`, and `mark` is raised if
/// the call fails (so a body being streamed ends as cut off).
pub async fn run(
    runtime: &Runtime,
    service: &Arc<Service>,
    request_id: &Arc<str>,
    request: http::Request<HttpBody>,
    sender: ResponseSender,
    mark: FailureMark,
) -> Result<(), Failure> {
    let caller = Caller {
        mark: Some(mark),
        trace: request
            .extensions()
            .get::<RequestTrace>()
            .map(|t| t.0.clone()),
        ..Caller::request(request_id.clone())
    };
    call(runtime, service, caller, async |store, live| {
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let proxy = live.proxy(&mut *store, &service.entry)?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut *store, request, out)
            .await
    })
    .await
}

/// Runs `wasi:http/handler.handle` (WASI 0.3) for `request` on an instance
/// of `service`, on the concurrent engine: the response head goes to
/// `sender`, and the store's event loop is kept running until the guest's
/// tasks are done, which is what streams the body (a 0.3 guest writes it
/// after `handle` returns). The call's deadline covers all of it.
pub async fn run_p3(
    runtime: &Runtime,
    service: &Arc<Service>,
    request_id: &Arc<str>,
    request: http::Request<HttpBody>,
    sender: P3ResponseSender,
    mark: FailureMark,
) -> Result<(), Failure> {
    let caller = Caller {
        mark: Some(mark),
        trace: request
            .extensions()
            .get::<RequestTrace>()
            .map(|t| t.0.clone()),
        ..Caller::request(request_id.clone())
    };
    call(runtime, service, caller, async |store, live| {
        let guest = live.p3(&mut *store, &service.entry)?;
        let (request, request_io) = P3Request::from_http(store.data_mut().http().hooks, request);
        store
            .run_concurrent(async |accessor| {
                match guest.handle(accessor, request).await? {
                    Ok(response) => {
                        let head = accessor
                            .with(|mut access| response.into_http(&mut access, request_io))?;
                        let _ = sender.send(Ok(head));
                    }
                    Err(code) => {
                        let _ = sender.send(Err(code));
                    }
                }
                std::future::poll_fn(|cx| accessor.poll_no_interesting_tasks(cx)).await;
                wasmtime::Result::<()>::Ok(())
            })
            .await?
    })
    .await
}

/// Hands `request` to one of the service's shared WASI 0.3 instances
/// (`instance-concurrency` above 1): the head goes to `sender` once the
/// guest has it, and the concurrency slot and in-flight count stay taken
/// until the body is sent. A failure of the instance after the head
/// raises `mark` (see [`Admitted`]).
async fn run_shared(
    runtime: &Runtime,
    service: &Arc<Service>,
    request_id: &Arc<str>,
    request: http::Request<HttpBody>,
    sender: P3ResponseSender,
    mark: FailureMark,
) -> Result<(), Failure> {
    let permit = acquire_slot(service).await?;
    let running = service.metrics(&runtime.metrics).in_flight();
    let (admitted, failure) = Admitted::new(request_id.clone(), mark.clone());
    let handler = runtime.shared(service);
    let timeout = service.info.limits.timeout;
    let result = match tokio::time::timeout(timeout, handler.handle(admitted, request)).await {
        Ok(Ok(response)) => {
            let response = response.map(|body| {
                body.map_frame(move |frame| {
                    let _held_until_the_body_ends = (&permit, &running);
                    frame
                })
                .boxed_unsync()
            });
            let _ = sender.send(Ok(response));
            return Ok(());
        }
        Ok(Err(err)) => match err.downcast::<P3ErrorCode>() {
            Ok(code) => {
                let _ = sender.send(Err(code));
                return Ok(());
            }
            Err(err) if err.is::<ExpirationError>() => Failure::new(FailureKind::Timeout),
            // The instance failed; it tells each of its requests how.
            Err(err) if err.is::<TrapOrPanicError>() => failure.await.unwrap_or_else(|_| {
                Failure::with_detail(FailureKind::Trap, "its shared instance ended first")
            }),
            Err(err) => Failure::from_error(err, false),
        },
        Err(_elapsed) => Failure::new(FailureKind::Timeout),
    };
    mark.set(result.kind);
    Err(result)
}

#[cfg(test)]
mod tests {
    use super::{check_authority, with_absolute_uri};
    use crate::http::body::full_body;

    fn with_host(host: &[u8]) -> hyper::Request<()> {
        let mut request = hyper::Request::get("/x").body(()).unwrap();
        request.headers_mut().insert(
            hyper::header::HOST,
            hyper::header::HeaderValue::from_bytes(host).unwrap(),
        );
        request
    }

    #[test]
    fn hosts_that_are_not_authorities_are_refused() {
        assert!(check_authority(&with_host(b"localhost:8080")).is_ok());
        assert!(check_authority(&with_host(b"example.com")).is_ok());
        for bad in [&b"\xff"[..], b"", b"a b", b"x/y"] {
            assert!(check_authority(&with_host(bad)).is_err(), "{bad:?}");
        }
        let absolute = hyper::Request::get("http://example.com/x")
            .body(())
            .unwrap();
        assert!(check_authority(&absolute).is_ok());
        let none = hyper::Request::get("/x").body(()).unwrap();
        assert!(check_authority(&none).is_err());
    }

    #[test]
    fn a_bare_path_is_made_absolute_from_host() {
        let request = |uri: &str, host: Option<&str>| {
            let mut builder = hyper::Request::get(uri);
            if let Some(host) = host {
                builder = builder.header(hyper::header::HOST, host);
            }
            with_absolute_uri(builder.body(full_body("")).unwrap())
        };
        let made = request("/x/y?a=1&b", Some("example.com:8080"));
        assert_eq!(made.uri().to_string(), "http://example.com:8080/x/y?a=1&b");
        let made = request("*", Some("example.com"));
        assert_eq!(made.uri().to_string(), "*");
        let kept = request("http://other.example/z", Some("example.com"));
        assert_eq!(kept.uri().to_string(), "http://other.example/z");
        let no_host = request("/x", None);
        assert_eq!(no_host.uri().to_string(), "/x");
    }
}

//! Why a request to a service failed, and how that is reported: the status
//! the client gets, a stable `kind` for both the JSON body and the log, and
//! the guest's trap message and backtrace for the log.

use hyper::StatusCode;
use wasmtime::{PoolConcurrencyLimitError, Trap, WasmBacktrace};

/// Frames of a guest backtrace kept in the log line; deep recursion would
/// otherwise produce thousands.
const BACKTRACE_FRAMES: usize = 8;

/// One failed call into a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The request ran past its time limit; the instance was dropped.
    Timeout,
    /// The guest tried to grow its memory past its limit.
    OutOfMemory,
    /// The guest exhausted its stack.
    StackOverflow,
    /// The guest trapped (a Rust panic lands here) or a host call failed.
    Trap,
    /// The guest returned something HTTP cannot carry.
    InvalidResponse,
    /// The guest's response body was over its limit.
    ResponseTooLarge,
    /// No instance slot became free in time (per service or host-wide).
    Overloaded,
    /// The service imports an interface that no service provides right now.
    Waiting,
    /// A service this one called failed.
    CalleeFailed,
    /// A service this one called could not take the call.
    CalleeUnavailable,
    /// Nested calls went deeper than the host allows (usually a cycle).
    CallDepthExceeded,
}

impl Failure {
    /// The status the client receives.
    pub fn status(self) -> StatusCode {
        match self {
            Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Failure::Overloaded | Failure::Waiting | Failure::CalleeUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Failure::CalleeFailed => StatusCode::BAD_GATEWAY,
            Failure::CallDepthExceeded => StatusCode::LOOP_DETECTED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short machine-readable name, used in the JSON body and the log.
    pub fn kind(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::OutOfMemory => "out_of_memory",
            Failure::StackOverflow => "stack_overflow",
            Failure::Trap => "trap",
            Failure::InvalidResponse => "invalid_response",
            Failure::ResponseTooLarge => "response_too_large",
            Failure::Overloaded => "overloaded",
            Failure::Waiting => "waiting",
            Failure::CalleeFailed => "callee_failed",
            Failure::CalleeUnavailable => "callee_unavailable",
            Failure::CallDepthExceeded => "call_depth_exceeded",
        }
    }

    /// What the client is told.
    pub fn message(self) -> &'static str {
        match self {
            Failure::Timeout => "the component did not answer within its time limit",
            Failure::OutOfMemory => "the component ran out of memory",
            Failure::StackOverflow => "the component overflowed its stack",
            Failure::Trap => "the component failed while handling the request",
            Failure::InvalidResponse => "the component returned an invalid response",
            Failure::ResponseTooLarge => "the component's response body is over its limit",
            Failure::Overloaded => "the component is at its concurrency limit; retry shortly",
            Failure::Waiting => "the component is waiting for an interface it imports",
            Failure::CalleeFailed => "a service this component called failed",
            Failure::CalleeUnavailable => "a service this component called is unavailable",
            Failure::CallDepthExceeded => "nested calls between services went too deep",
        }
    }

    /// Classifies an error from instantiating or calling a guest.
    /// `memory_limit_hit` wins over the trap code, because a guest whose
    /// allocation is refused usually aborts with an unrelated trap.
    pub fn classify(err: &wasmtime::Error, memory_limit_hit: bool) -> Failure {
        if memory_limit_hit {
            return Failure::OutOfMemory;
        }
        if err.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
            return Failure::Overloaded;
        }
        if let Some(callee) = err.downcast_ref::<CalleeError>() {
            return match callee.kind {
                CalleeErrorKind::Failed => Failure::CalleeFailed,
                CalleeErrorKind::Unavailable => Failure::CalleeUnavailable,
                CalleeErrorKind::DepthExceeded => Failure::CallDepthExceeded,
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Failure::Timeout,
            Some(Trap::StackOverflow) => Failure::StackOverflow,
            _ => Failure::Trap,
        }
    }
}

/// How a call from one service into another went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalleeErrorKind {
    /// The callee trapped, timed out or ran out of memory.
    Failed,
    /// The callee could not take the call (missing, waiting, at capacity).
    Unavailable,
    /// The chain of nested calls is too deep.
    DepthExceeded,
}

/// The error a caller's host call returns when its callee fails; it makes
/// the caller's request fail with a status that names the callee.
#[derive(Debug, thiserror::Error)]
#[error("call to `{callee}` failed: {reason}")]
pub struct CalleeError {
    /// The service (or interface) called.
    pub callee: String,
    /// What went wrong, which picks the caller's status.
    pub kind: CalleeErrorKind,
    /// A one-line explanation.
    pub reason: String,
}

impl CalleeError {
    /// An error for `callee`.
    pub fn new(callee: &str, kind: CalleeErrorKind, reason: String) -> CalleeError {
        CalleeError {
            callee: callee.to_string(),
            kind,
            reason,
        }
    }

    /// The error a caller sees when its call to `callee` ended in `failure`.
    pub fn from_failure(callee: &str, failure: &crate::invoke::CallFailure) -> CalleeError {
        let kind = match failure.failure {
            Failure::Overloaded | Failure::Waiting | Failure::CalleeUnavailable => {
                CalleeErrorKind::Unavailable
            }
            Failure::CallDepthExceeded => CalleeErrorKind::DepthExceeded,
            _ => CalleeErrorKind::Failed,
        };
        CalleeError::new(callee, kind, failure.describe())
    }
}

/// The guest frames of `err`'s backtrace on one line, innermost first, or
/// `None` when the error carries no backtrace.
pub fn guest_backtrace(err: &wasmtime::Error) -> Option<String> {
    let backtrace = err.downcast_ref::<WasmBacktrace>()?;
    let frames = backtrace.frames();
    let mut shown: Vec<String> = frames
        .iter()
        .take(BACKTRACE_FRAMES)
        .map(|frame| {
            let function = frame.func_name().unwrap_or("<unnamed>");
            match frame.module().name() {
                Some(module) => format!("{module}!{function}"),
                None => function.to_string(),
            }
        })
        .collect();
    if frames.len() > BACKTRACE_FRAMES {
        shown.push(format!("... {} more", frames.len() - BACKTRACE_FRAMES));
    }
    Some(shown.join(" <- "))
}

/// The root cause of `err` as one line, without the backtrace.
pub fn trap_message(err: &wasmtime::Error) -> String {
    match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => err
            .chain()
            .map(|cause| cause.to_string())
            .collect::<Vec<_>>()
            .join(": ")
            .replace('\n', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traps_map_to_statuses() {
        let interrupt = wasmtime::Error::new(Trap::Interrupt);
        assert_eq!(Failure::classify(&interrupt, false), Failure::Timeout);
        assert_eq!(Failure::Timeout.status(), StatusCode::GATEWAY_TIMEOUT);

        let overflow = wasmtime::Error::new(Trap::StackOverflow);
        assert_eq!(Failure::classify(&overflow, false), Failure::StackOverflow);

        let unreachable = wasmtime::Error::new(Trap::UnreachableCodeReached);
        assert_eq!(Failure::classify(&unreachable, false), Failure::Trap);
        assert_eq!(Failure::classify(&unreachable, true), Failure::OutOfMemory);
        assert_eq!(
            Failure::OutOfMemory.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            Failure::Overloaded.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn messages_are_one_line() {
        let err = wasmtime::Error::msg("first\nsecond");
        assert_eq!(trap_message(&err), "first second");
    }
}

//! Why a call into a service failed: a stable kind (named the same in JSON
//! bodies, logs and metrics), the wasmtime error behind it with the guest's
//! trap message and backtrace, and how each failure is logged and counted.
//! Which HTTP status a kind becomes is the front door's decision, not this
//! file's.

use wasmtime::{PoolConcurrencyLimitError, Trap, WasmBacktrace};

use crate::logging::escape;
use crate::metrics::Metrics;

/// Frames of a guest backtrace kept in the log line; deep recursion would
/// otherwise produce thousands.
const BACKTRACE_FRAMES: usize = 8;

/// What kind of failure a call ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
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
    /// The client's request body went over the service's limit while it
    /// streamed to the guest.
    RequestTooLarge,
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

impl FailureKind {
    /// A short machine-readable name, used in the JSON body, the log and
    /// metrics.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::OutOfMemory => "out_of_memory",
            FailureKind::StackOverflow => "stack_overflow",
            FailureKind::Trap => "trap",
            FailureKind::InvalidResponse => "invalid_response",
            FailureKind::ResponseTooLarge => "response_too_large",
            FailureKind::RequestTooLarge => "request_too_large",
            FailureKind::Overloaded => "overloaded",
            FailureKind::Waiting => "waiting",
            FailureKind::CalleeFailed => "callee_failed",
            FailureKind::CalleeUnavailable => "callee_unavailable",
            FailureKind::CallDepthExceeded => "call_depth_exceeded",
        }
    }

    /// What the client is told.
    pub fn message(self) -> &'static str {
        match self {
            FailureKind::Timeout => "the component did not answer within its time limit",
            FailureKind::OutOfMemory => "the component ran out of memory",
            FailureKind::StackOverflow => "the component overflowed its stack",
            FailureKind::Trap => "the component failed while handling the request",
            FailureKind::InvalidResponse => "the component returned an invalid response",
            FailureKind::ResponseTooLarge => "the component's response body is over its limit",
            FailureKind::RequestTooLarge => "request body too large",
            FailureKind::Overloaded => "the component is at its concurrency limit; retry shortly",
            FailureKind::Waiting => "the component is waiting for an interface it imports",
            FailureKind::CalleeFailed => "a service this component called failed",
            FailureKind::CalleeUnavailable => "a service this component called is unavailable",
            FailureKind::CallDepthExceeded => "nested calls between services went too deep",
        }
    }

    /// Whether the failure says "not now" rather than "broken": the callee
    /// could not take the call, and a retry may succeed.
    pub fn is_unavailable(self) -> bool {
        matches!(
            self,
            FailureKind::Overloaded | FailureKind::Waiting | FailureKind::CalleeUnavailable
        )
    }

    /// Classifies an error from instantiating or calling a guest.
    /// `memory_limit_hit` wins over the trap code, because a guest whose
    /// allocation is refused usually aborts with an unrelated trap.
    pub fn classify(err: &wasmtime::Error, memory_limit_hit: bool) -> FailureKind {
        if memory_limit_hit {
            return FailureKind::OutOfMemory;
        }
        if err.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
            return FailureKind::Overloaded;
        }
        if let Some(callee) = err.downcast_ref::<CalleeError>() {
            return match callee.kind {
                CalleeErrorKind::Failed => FailureKind::CalleeFailed,
                CalleeErrorKind::Unavailable => FailureKind::CalleeUnavailable,
                CalleeErrorKind::DepthExceeded => FailureKind::CallDepthExceeded,
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => FailureKind::Timeout,
            Some(Trap::StackOverflow) => FailureKind::StackOverflow,
            _ => FailureKind::Trap,
        }
    }
}

/// Why a call did not complete, with what is needed to report it.
#[derive(Debug)]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The wasmtime error behind it, if any (trap, backtrace, callee).
    pub error: Option<wasmtime::Error>,
    /// Extra explanation, such as the interface a service is waiting for.
    pub detail: Option<String>,
}

impl Failure {
    /// A failure of `kind` with nothing more to say.
    pub fn new(kind: FailureKind) -> Failure {
        Failure {
            kind,
            error: None,
            detail: None,
        }
    }

    /// A failure of `kind`, explained by `detail`.
    pub fn with_detail(kind: FailureKind, detail: impl Into<String>) -> Failure {
        Failure {
            detail: Some(detail.into()),
            ..Failure::new(kind)
        }
    }

    /// The failure `err` (from instantiating or calling a guest) stands for;
    /// see [`FailureKind::classify`].
    pub fn from_error(err: wasmtime::Error, memory_limit_hit: bool) -> Failure {
        Failure {
            kind: FailureKind::classify(&err, memory_limit_hit),
            error: Some(err),
            detail: None,
        }
    }

    /// One line saying what happened, for callers and logs.
    pub fn describe(&self) -> String {
        let mut text = self.kind.message().to_string();
        if let Some(detail) = &self.detail {
            text.push_str(": ");
            text.push_str(detail);
        }
        if let Some(err) = &self.error {
            text.push_str(": ");
            text.push_str(&trap_message(err));
        }
        text
    }

    /// The callee named by this failure, when a call to another service is
    /// what failed.
    pub fn callee(&self) -> Option<&CalleeError> {
        self.error.as_ref()?.downcast_ref::<CalleeError>()
    }

    /// Counts the failure and logs it with its trap and guest backtrace,
    /// under the request id that doubles as the error id.
    pub fn record(&self, metrics: &Metrics, component: &str, request_id: &str) {
        let kind = self.kind;
        metrics.failure(component, kind.name());
        let trap = self.error.as_ref().map(trap_message).unwrap_or_default();
        let backtrace = self
            .error
            .as_ref()
            .and_then(guest_backtrace)
            .unwrap_or_default();
        let detail = self.detail.as_deref().unwrap_or_default();
        tracing::error!(
            error_id = %request_id,
            component = %component,
            kind = %kind.name(),
            detail = %escape(detail),
            trap = %escape(&trap),
            backtrace = %escape(&backtrace),
            "request failed: {}",
            kind.message()
        );
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
/// the caller's request fail with a kind that names the callee.
#[derive(Debug, thiserror::Error)]
#[error("call to `{callee}` failed: {reason}")]
pub struct CalleeError {
    /// The service (or interface) called.
    pub callee: String,
    /// What went wrong, which picks the caller's failure kind.
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
    pub fn from_failure(callee: &str, failure: &Failure) -> CalleeError {
        let kind = match failure.kind {
            kind if kind.is_unavailable() => CalleeErrorKind::Unavailable,
            FailureKind::CallDepthExceeded => CalleeErrorKind::DepthExceeded,
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
    fn traps_map_to_kinds() {
        let interrupt = wasmtime::Error::new(Trap::Interrupt);
        assert_eq!(
            FailureKind::classify(&interrupt, false),
            FailureKind::Timeout
        );

        let overflow = wasmtime::Error::new(Trap::StackOverflow);
        assert_eq!(
            FailureKind::classify(&overflow, false),
            FailureKind::StackOverflow
        );

        let unreachable = wasmtime::Error::new(Trap::UnreachableCodeReached);
        assert_eq!(
            FailureKind::classify(&unreachable, false),
            FailureKind::Trap
        );
        assert_eq!(
            FailureKind::classify(&unreachable, true),
            FailureKind::OutOfMemory
        );
    }

    #[test]
    fn messages_are_one_line() {
        let err = wasmtime::Error::msg("first\nsecond");
        assert_eq!(trap_message(&err), "first second");
    }
}

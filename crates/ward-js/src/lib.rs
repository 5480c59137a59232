//! Ward's JavaScript sandbox (QuickJS through `rquickjs`): Sensu's filter expressions and
//! JavaScript mutators, as Sensu's otto environment runs them, with limits Sensu lacks.
//!
//! - **No way out**: QuickJS's core has no file, network, process or timer API (its `std`
//!   and `os` modules are not built); scripts see the ECMAScript built-ins, `event`,
//!   Sensu's time helpers, and Sensu's event functions (`sensu.FetchEvent`, …), which read
//!   what the caller's [`EventLookup`] gives them.
//! - **Limits**: every compile and every evaluation runs under a wall-clock deadline (an
//!   interrupt handler QuickJS polls while running bytecode and regular expressions), the
//!   runtime under a heap limit and a stack limit. A script past one is stopped with
//!   [`JsError::Timeout`] or [`JsError::Memory`]; the sandbox stays usable.
//! - **No state between evaluations**: each call gets a `event` object of its own (the
//!   expressions of one filter share it, as in Sensu), in a context whose global object and built-ins are frozen after start-up (a
//!   filter cannot leave anything behind for another, in any namespace). JavaScript
//!   mutators, whose documented idiom assigns globals (`data = …`), run in a runtime of
//!   their own whose built-ins and globals are read-only, and every global a run adds is
//!   deleted after it.
//! - **Compiled once**: a [`Sandbox`] keeps each expression's compiled function, keyed by
//!   its text (so a changed filter is compiled anew), up to [`CACHE`] of them and
//!   [`CACHE_BYTES`] of text. Expressions run in strict mode. A sandbox that ran out of
//!   memory or was left with promise jobs is made anew.
//!
//! Expressions are single ECMAScript expressions (as every example in Sensu's
//! documentation): `event.check.occurrences == 1 && hour(event.timestamp) >= 9`. The result
//! is taken by JavaScript truthiness, as otto does.

#![forbid(unsafe_code)]

mod events;
mod sandbox;
#[cfg(test)]
mod tests;

pub use events::{with_events, EventLookup, MAX_LISTED};
pub use sandbox::{
    check_expression, check_function_body, run_mutator, run_mutator_with_libraries,
    with_library_sandbox, with_sandbox, Sandbox, LIBRARY_TIME,
};

use std::time::Duration;

/// Compiled expressions a sandbox keeps; past this the cache starts again.
pub const CACHE: usize = 4096;
/// The text of the compiled expressions a sandbox keeps, bytes at most.
pub const CACHE_BYTES: usize = 4 << 20;

/// What a sandbox may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time per compile or evaluation.
    pub time: Duration,
    /// Heap of the whole runtime, bytes.
    pub memory: usize,
}

impl Default for Limits {
    /// 100 ms and 32 MiB: a filter expression takes microseconds.
    fn default() -> Self {
        Limits {
            time: Duration::from_millis(100),
            memory: 32 << 20,
        }
    }
}

/// Why a script did not give a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsError {
    /// It does not parse. `line` and `column` are 1-based, in the script's own text.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: u32,
        column: u32,
        message: String,
    },
    /// It threw (a `TypeError` reading a missing field, …).
    #[error("{0}")]
    Thrown(String),
    /// It ran past its time limit and was stopped.
    #[error("stopped after its time limit of {} ms", .0.as_millis())]
    Timeout(Duration),
    /// It ran out of the sandbox's heap or stack and was stopped.
    #[error("stopped: it used more than the sandbox's memory or stack")]
    Memory,
    /// A mutator returned something that is neither a string nor undefined/null.
    #[error("a JavaScript mutator must return a string, undefined or null; it returned {0}")]
    Returned(String),
    /// The engine itself failed (it could not start).
    #[error("JavaScript engine: {0}")]
    Engine(String),
}

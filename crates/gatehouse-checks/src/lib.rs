//! Qualification checks in CEL (Common Expression Language) over a subject:
//! `metrics.auc >= 0.90`, `!("PHI" in sensitivity)`, `has(documents.model_card)`.
//!
//! Pure: no IO, no async runtime. The plain data (scopes, enforcement,
//! outcomes, [`CheckResult`]) lives in `gatehouse_core::checks`; this crate
//! parses and evaluates.
//!
//! The CEL parser recurses on the machine stack: in a debug build about 20
//! nested parentheses overflow a 2 MiB tokio worker's stack, and a stack
//! overflow aborts the whole process. So every expression is first bounded
//! ([`bound`]: at most [`EXPRESSION_MAX`] bytes and [`NESTING_MAX`] levels of
//! brackets, counted by a scan that knows string literals and comments), and
//! then parsed and evaluated only on a thread of its own with a fixed,
//! generous stack ([`STACK_SIZE`]), where a panic of the parser is caught and
//! becomes an error ([`stack`]). Nothing parsed ever leaves that thread, so
//! even dropping a syntax tree happens there.

mod bounds;
mod context;
mod eval;
pub mod stack;

pub use bounds::bound;
pub use context::{Document, SubjectContext, SubjectRef, VersionContext};
pub use eval::{evaluate_all, evaluate_all_blocking, validate, validate_blocking};
pub use gatehouse_core::checks::{
    CheckResult, CheckScope, EXPRESSION_MAX, Enforcement, NESTING_MAX, Outcome,
};
pub use stack::STACK_SIZE;

/// A check to evaluate: its name, scope, enforcement and expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckDef {
    pub name: String,
    pub scope: CheckScope,
    pub enforcement: Enforcement,
    pub expression: String,
}

/// Why an expression is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("the expression is empty")]
    Empty,
    #[error("the expression is {len} bytes long; at most {max} are accepted")]
    TooLong { len: usize, max: usize },
    #[error(
        "the expression nests brackets {depth} deep at character {at}; at most {max} levels are accepted"
    )]
    TooDeep { depth: usize, max: usize, at: usize },
    /// The parser's first message and where it points (1-based line and column).
    #[error("syntax error at line {line}, column {column}: {message}")]
    Syntax {
        message: String,
        line: i64,
        column: i64,
    },
    /// The parser panicked or its thread could not run: never a pass.
    #[error("the expression could not be parsed: {0}")]
    Internal(String),
}

//! Parsing (to refuse a malformed expression when a check is saved) and
//! evaluation over a subject, each on a check thread ([`crate::stack`]).

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use cel::common::ast::{Expr, LiteralValue};
use cel::{Context, ExecutionError, Program, Value};

use crate::stack::{self, StackError};
use crate::{CheckDef, CheckError, CheckResult, Outcome, SubjectContext, bound};

/// Checks that `expr` keeps the bounds and parses: the parser's first
/// message with its line and column otherwise. Parses on a check thread.
pub async fn validate(expr: &str) -> Result<(), CheckError> {
    bound(expr)?;
    let owned = expr.to_owned();
    stack::spawn(move || parse_here(&owned).map(drop))
        .await
        .unwrap_or_else(|e| Err(internal(e)))
}

/// [`validate`] for callers that may block (tests, the CLI).
pub fn validate_blocking(expr: &str) -> Result<(), CheckError> {
    bound(expr)?;
    let owned = expr.to_owned();
    stack::run(move || parse_here(&owned).map(drop)).unwrap_or_else(|e| Err(internal(e)))
}

/// Evaluates every check on the subject, in order, on one check thread.
/// Never fails: a check that cannot be evaluated is an `error` result.
pub async fn evaluate_all(defs: Vec<CheckDef>, ctx: SubjectContext) -> Vec<CheckResult> {
    if defs.is_empty() {
        return Vec::new();
    }
    let fallback = defs.clone();
    match stack::spawn(move || evaluate_here(&defs, &ctx)).await {
        Ok(results) => results,
        Err(e) => failed_all(&fallback, &e),
    }
}

/// [`evaluate_all`] for callers that may block.
pub fn evaluate_all_blocking(defs: Vec<CheckDef>, ctx: SubjectContext) -> Vec<CheckResult> {
    let fallback = defs.clone();
    match stack::run(move || evaluate_here(&defs, &ctx)) {
        Ok(results) => results,
        Err(e) => failed_all(&fallback, &e),
    }
}

fn internal(e: StackError) -> CheckError {
    CheckError::Internal(e.to_string())
}

fn failed_all(defs: &[CheckDef], e: &StackError) -> Vec<CheckResult> {
    defs.iter()
        .map(|d| result(d, Outcome::Error, e.to_string(), BTreeMap::new()))
        .collect()
}

fn result(
    d: &CheckDef,
    outcome: Outcome,
    message: String,
    values: BTreeMap<String, serde_json::Value>,
) -> CheckResult {
    CheckResult {
        name: d.name.clone(),
        scope: d.scope,
        enforcement: d.enforcement,
        outcome,
        message,
        values,
    }
}

/// Parses on the current thread: only ever called on a check thread.
fn parse_here(expr: &str) -> Result<Program, CheckError> {
    match catch_unwind(AssertUnwindSafe(|| Program::compile(expr))) {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(errors)) => Err(match errors.errors.first() {
            Some(e) => CheckError::Syntax {
                message: e
                    .msg
                    .strip_prefix("Syntax error: ")
                    .unwrap_or(&e.msg)
                    .to_owned(),
                line: i64::try_from(e.pos.0).unwrap_or(0),
                column: i64::try_from(e.pos.1).unwrap_or(0),
            },
            None => CheckError::Syntax {
                message: errors.to_string(),
                line: 0,
                column: 0,
            },
        }),
        Err(_) => Err(CheckError::Internal("the parser panicked".into())),
    }
}

/// The variable names of an expression and the labels of their entries in
/// messages.
const MAPS: [(&str, &str); 5] = [
    ("metrics", "metric"),
    ("params", "param"),
    ("tags", "tag"),
    ("documents", "document"),
    ("subject", "field"),
];
const WHOLE: [&str; 3] = ["sensitivity", "tier", "project"];

/// Binds the subject's variables.
fn bind(ctx: &SubjectContext) -> Result<Context<'static, 'static>, String> {
    let mut c = Context::default();
    let mut put = |name: &str, v: Result<Value, cel::SerializationError>| -> Result<(), String> {
        c.add_variable_from_value(name, v.map_err(|e| format!("{name}: {e}"))?);
        Ok(())
    };
    put("metrics", cel::to_value(&ctx.metrics))?;
    put("params", cel::to_value(&ctx.params))?;
    put("sensitivity", cel::to_value(&ctx.sensitivity))?;
    put("tags", cel::to_value(&ctx.tags))?;
    put("documents", cel::to_value(&ctx.documents))?;
    put("subject", cel::to_value(&ctx.subject))?;
    put("tier", cel::to_value(ctx.tier))?;
    put("project", cel::to_value(&ctx.project))?;
    put("versions", cel::to_value(&ctx.versions))?;
    Ok(c)
}

fn evaluate_here(defs: &[CheckDef], ctx: &SubjectContext) -> Vec<CheckResult> {
    let bound_ctx = match catch_unwind(AssertUnwindSafe(|| bind(ctx))) {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let e = StackError::Panicked(format!("the subject could not be bound: {e}"));
            return failed_all(defs, &e);
        }
        Err(_) => {
            let e = StackError::Panicked("binding the subject panicked".into());
            return failed_all(defs, &e);
        }
    };
    defs.iter()
        .map(|d| {
            catch_unwind(AssertUnwindSafe(|| evaluate_one(d, &bound_ctx, ctx))).unwrap_or_else(
                |_| {
                    result(
                        d,
                        Outcome::Error,
                        "the evaluator panicked on this expression".into(),
                        BTreeMap::new(),
                    )
                },
            )
        })
        .collect()
}

fn evaluate_one(d: &CheckDef, c: &Context, subject: &SubjectContext) -> CheckResult {
    if let Err(e) = bound(&d.expression) {
        return result(d, Outcome::Error, e.to_string(), BTreeMap::new());
    }
    let program = match parse_here(&d.expression) {
        Ok(p) => p,
        Err(e) => return result(d, Outcome::Error, e.to_string(), BTreeMap::new()),
    };
    let mut refs = Vec::new();
    references(program.expression(), &mut refs);
    let values: BTreeMap<String, serde_json::Value> = refs
        .iter()
        .map(|r| {
            let v = match &r.key {
                Some(k) => subject.field(&r.root, k),
                None => subject.variable(&r.root),
            };
            (r.label(), v.unwrap_or(serde_json::Value::Null))
        })
        .collect();
    let (outcome, message) = match program.execute(c) {
        Ok(Value::Bool(true)) => (Outcome::Pass, "the expression is true".to_owned()),
        Ok(Value::Bool(false)) => (Outcome::Fail, "the expression is false".to_owned()),
        Ok(other) => (
            Outcome::Error,
            format!(
                "the expression gave {} ({}), not a bool",
                other.type_of(),
                short(&other)
            ),
        ),
        Err(e) => (Outcome::Error, explain(&e, &refs, subject)),
    };
    result(d, outcome, message, values)
}

fn short(v: &Value) -> String {
    let s = format!("{v:?}");
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// An evaluation error in the words of the subject: a missing metric is
/// "the subject has no metric 'auc'".
fn explain(e: &ExecutionError, refs: &[Ref], subject: &SubjectContext) -> String {
    if let ExecutionError::NoSuchKey(k) = e {
        let missing = refs
            .iter()
            .find(|r| r.key.as_deref() == Some(k.as_str()) && subject.field(&r.root, k).is_none());
        if let Some(r) = missing {
            let what = MAPS
                .iter()
                .find(|(root, _)| *root == r.root)
                .map_or("entry", |(_, label)| label);
            return format!("the subject has no {what} '{k}'");
        }
    }
    format!("the expression could not be evaluated: {e}")
}

/// A variable, or an entry of one, that an expression names.
#[derive(Debug, PartialEq, Eq)]
struct Ref {
    root: String,
    key: Option<String>,
}

impl Ref {
    fn label(&self) -> String {
        match &self.key {
            Some(k) if is_ident(k) => format!("{}.{k}", self.root),
            Some(k) => format!("{}[{k:?}]", self.root),
            None => self.root.clone(),
        }
    }
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn push(out: &mut Vec<Ref>, r: Ref) {
    if !out.contains(&r) {
        out.push(r);
    }
}

/// Collects `metrics.auc`, `metrics["auc"]`, `has(documents.model_card)`,
/// `sensitivity`, … (recursion bounded by the parser's own depth limit, and
/// on a check thread).
fn references(e: &cel::IdedExpr, out: &mut Vec<Ref>) {
    let root_of = |e: &cel::IdedExpr| match &e.expr {
        Expr::Ident(n) if MAPS.iter().any(|(r, _)| r == n) => Some(n.clone()),
        _ => None,
    };
    match &e.expr {
        Expr::Ident(n) if WHOLE.contains(&n.as_str()) => push(
            out,
            Ref {
                root: n.clone(),
                key: None,
            },
        ),
        Expr::Select(s) => match root_of(&s.operand) {
            Some(root) => push(
                out,
                Ref {
                    root,
                    key: Some(s.field.clone()),
                },
            ),
            None => references(&s.operand, out),
        },
        Expr::Call(call) => {
            if call.func_name == "_[_]"
                && let [target, key] = call.args.as_slice()
                && let (Some(root), Expr::Literal(LiteralValue::String(k))) =
                    (root_of(target), &key.expr)
            {
                push(
                    out,
                    Ref {
                        root,
                        key: Some(k.inner().to_owned()),
                    },
                );
                return;
            }
            if let Some(t) = &call.target {
                references(t, out);
            }
            for a in &call.args {
                references(a, out);
            }
        }
        Expr::Comprehension(c) => {
            for x in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                references(x, out);
            }
        }
        Expr::List(l) => {
            for x in &l.elements {
                references(x, out);
            }
        }
        Expr::Map(m) => {
            for entry in &m.entries {
                if let cel::common::ast::EntryExpr::MapEntry(me) = &entry.expr {
                    references(&me.key, out);
                    references(&me.value, out);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                if let cel::common::ast::EntryExpr::StructField(f) = &entry.expr {
                    references(&f.value, out);
                }
            }
        }
        _ => {}
    }
}

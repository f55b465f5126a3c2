//! Checks evaluated over realistic subjects, and the bounds that keep the
//! parser's recursion on a check thread's stack. These run on the test
//! harness's threads (2 MiB stacks in a debug build): everything parsed here
//! is parsed on a check thread, or the test would abort.

use std::collections::BTreeMap;

use gatehouse_checks::{
    CheckDef, CheckError, CheckResult, CheckScope, Document, EXPRESSION_MAX, Enforcement,
    NESTING_MAX, Outcome, SubjectContext, VersionContext, evaluate_all_blocking, validate_blocking,
};
use serde_json::json;

fn version(metrics: &[(&str, f64)], sensitivity: &[&str]) -> VersionContext {
    VersionContext {
        model: "fraud-scorer".into(),
        version: 3,
        metrics: metrics.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        params: BTreeMap::from([("max_depth".to_owned(), "8".to_owned())]),
        sensitivity: sensitivity.iter().map(|s| (*s).to_owned()).collect(),
        tags: BTreeMap::from([("team".to_owned(), "risk-analytics".to_owned())]),
    }
}

fn fraud_v3() -> SubjectContext {
    SubjectContext::version(
        "FRAUD",
        3,
        version(&[("auc", 0.93), ("disparate_impact", 0.84)], &["PII"]),
        BTreeMap::from([(
            "model_card".to_owned(),
            Document {
                uri: "s3://cards/fraud-3.md".into(),
                sha256: "ab".repeat(32),
            },
        )]),
    )
}

fn def(expr: &str) -> CheckDef {
    CheckDef {
        name: "c".into(),
        scope: CheckScope::Global,
        enforcement: Enforcement::Blocking,
        expression: expr.into(),
    }
}

fn eval(expr: &str, ctx: &SubjectContext) -> CheckResult {
    let mut r = evaluate_all_blocking(vec![def(expr)], ctx.clone());
    assert_eq!(r.len(), 1);
    r.remove(0)
}

#[test]
fn realistic_checks_pass_and_fail_with_the_values_they_saw() {
    let v = fraud_v3();
    for (expr, outcome, values) in [
        (
            "metrics.auc >= 0.90",
            Outcome::Pass,
            json!({"metrics.auc": 0.93}),
        ),
        (
            "metrics.auc >= 0.95",
            Outcome::Fail,
            json!({"metrics.auc": 0.93}),
        ),
        (
            "metrics.disparate_impact >= 0.8",
            Outcome::Pass,
            json!({"metrics.disparate_impact": 0.84}),
        ),
        (
            "metrics['auc'] > 0.5",
            Outcome::Pass,
            json!({"metrics.auc": 0.93}),
        ),
        (
            "!(\"PHI\" in sensitivity)",
            Outcome::Pass,
            json!({"sensitivity": ["PII"]}),
        ),
        (
            "!(\"PII\" in sensitivity)",
            Outcome::Fail,
            json!({"sensitivity": ["PII"]}),
        ),
        (
            "has(documents.model_card)",
            Outcome::Pass,
            json!({"documents.model_card": {"uri": "s3://cards/fraud-3.md", "sha256": "ab".repeat(32)}}),
        ),
        (
            "has(documents.validation_report)",
            Outcome::Fail,
            json!({"documents.validation_report": null}),
        ),
        (
            "tier >= 3 && project == 'FRAUD'",
            Outcome::Pass,
            json!({"tier": 3, "project": "FRAUD"}),
        ),
        (
            "params.max_depth == '8'",
            Outcome::Pass,
            json!({"params.max_depth": "8"}),
        ),
        (
            "tags.team.startsWith('risk')",
            Outcome::Pass,
            json!({"tags.team": "risk-analytics"}),
        ),
        (
            "subject.kind == 'version' && subject.version == 3",
            Outcome::Pass,
            json!({"subject.kind": "version", "subject.version": 3}),
        ),
        (
            "metrics.auc >= 1",
            Outcome::Fail,
            json!({"metrics.auc": 0.93}),
        ),
        ("size(versions) == 0", Outcome::Pass, json!({})),
    ] {
        let r = eval(expr, &v);
        assert_eq!(r.outcome, outcome, "{expr}: {}", r.message);
        assert_eq!(json!(r.values), values, "{expr}");
    }
}

#[test]
fn a_missing_metric_is_an_error_never_a_pass() {
    let v = fraud_v3();
    for expr in [
        "metrics.gini >= 0.5",
        "metrics.gini >= 0.5 || metrics.gini < 0.5",
        "!(metrics.gini < 0.5)",
        "metrics['gini'] > 0.0",
    ] {
        let r = eval(expr, &v);
        assert_eq!(r.outcome, Outcome::Error, "{expr}");
        assert_eq!(r.message, "the subject has no metric 'gini'", "{expr}");
        assert_eq!(r.values.get("metrics.gini"), Some(&json!(null)), "{expr}");
    }
    let r = eval("params.lr == '0.1'", &v);
    assert_eq!(
        (r.outcome, r.message.as_str()),
        (Outcome::Error, "the subject has no param 'lr'")
    );
    let r = eval("tags.owner == 'x'", &v);
    assert_eq!(r.message, "the subject has no tag 'owner'");
    // has() asks without failing.
    assert_eq!(eval("has(metrics.gini)", &v).outcome, Outcome::Fail);
}

#[test]
fn anything_but_a_bool_is_an_error() {
    let v = fraud_v3();
    for expr in ["metrics.auc", "1 + 1", "'yes'", "sensitivity", "null"] {
        let r = eval(expr, &v);
        assert_eq!(r.outcome, Outcome::Error, "{expr}");
        assert!(r.message.contains("not a bool"), "{expr}: {}", r.message);
    }
    for (expr, words) in [
        (
            "unknown_variable > 1",
            "Undeclared reference to 'unknown_variable'",
        ),
        ("metrics.auc > 'x'", "could not be evaluated"),
        ("1 / 0 == 1", "could not be evaluated"),
    ] {
        let r = eval(expr, &v);
        assert_eq!(r.outcome, Outcome::Error, "{expr}");
        assert!(r.message.contains(words), "{expr}: {}", r.message);
    }
}

#[test]
fn a_bundle_sees_its_versions_and_their_labels() {
    let b = SubjectContext::bundle(
        "FRAUD",
        4,
        "fraud-detection-v1.0",
        vec![
            version(&[("auc", 0.93)], &["PII"]),
            version(&[("auc", 0.88)], &["PHI", "PII"]),
        ],
        BTreeMap::new(),
    );
    assert_eq!(b.sensitivity, vec!["PHI".to_owned(), "PII".to_owned()]);
    assert_eq!(eval("'PHI' in sensitivity", &b).outcome, Outcome::Pass);
    assert_eq!(
        eval("versions.all(v, v.metrics.auc >= 0.90)", &b).outcome,
        Outcome::Fail
    );
    assert_eq!(
        eval("versions.exists(v, v.metrics.auc >= 0.90)", &b).outcome,
        Outcome::Pass
    );
    assert_eq!(
        eval("subject.bundle == 'fraud-detection-v1.0'", &b).outcome,
        Outcome::Pass
    );
    let r = eval("metrics.auc > 0.5", &b);
    assert_eq!(r.outcome, Outcome::Error);
    assert_eq!(r.message, "the subject has no metric 'auc'");
}

#[test]
fn results_keep_the_check_they_belong_to_and_their_order() {
    let defs = vec![
        CheckDef {
            name: "min-auc".into(),
            scope: CheckScope::Tier(gatehouse_core::inventory::RiskTier::new(3).unwrap()),
            enforcement: Enforcement::Advisory,
            expression: "metrics.auc >= 0.99".into(),
        },
        def("(((("),
        def("true"),
    ];
    let r = evaluate_all_blocking(defs, fraud_v3());
    assert_eq!(r.len(), 3);
    assert_eq!(
        (
            r[0].name.as_str(),
            r[0].scope.to_string(),
            r[0].enforcement,
            r[0].outcome
        ),
        (
            "min-auc",
            "tier:3".to_owned(),
            Enforcement::Advisory,
            Outcome::Fail
        )
    );
    // A stored expression that no longer parses is an error, not a crash.
    assert_eq!(r[1].outcome, Outcome::Error);
    assert!(r[1].message.starts_with("syntax error"), "{}", r[1].message);
    assert_eq!(r[2].outcome, Outcome::Pass);
    assert!(evaluate_all_blocking(Vec::new(), fraud_v3()).is_empty());
}

#[test]
fn a_malformed_expression_is_refused_with_the_parsers_message_and_position() {
    for (expr, line, column) in [
        ("metrics.auc >= ", 1, 16),
        ("metrics.auc >= 0.9 )", 1, 20),
        ("true &&\n  metrics.auc = 2", 2, 15),
    ] {
        match validate_blocking(expr) {
            Err(CheckError::Syntax {
                message,
                line: l,
                column: c,
            }) => {
                assert!(!message.is_empty());
                assert_eq!((l, c), (line, column), "{expr}: {message}");
            }
            other => panic!("{expr}: {other:?}"),
        }
    }
    let e = validate_blocking("metrics.auc >= ")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("syntax error at line 1, column 16: "), "{e}");
    assert_eq!(validate_blocking("metrics.auc >= 0.9"), Ok(()));
}

/// Expressions exactly at the limits parse and evaluate on a check thread
/// (this is a debug build when run by `cargo test`).
#[test]
fn expressions_at_the_limits_parse_on_a_check_thread() {
    let nested = |open: &str, close: &str, inner: &str| {
        format!(
            "{}{inner}{}",
            open.repeat(NESTING_MAX),
            close.repeat(NESTING_MAX)
        )
    };
    let pad = |s: String| {
        let n = EXPRESSION_MAX - s.len();
        format!("{s}{}", " ".repeat(n))
    };
    // Brackets at the depth limit, padded to the length limit.
    let parens = pad(nested("(", ")", "true"));
    assert_eq!(parens.len(), EXPRESSION_MAX);
    assert_eq!(validate_blocking(&parens), Ok(()));
    assert_eq!(eval(&parens, &fraud_v3()).outcome, Outcome::Pass);
    let lists = nested("[", "]", "1");
    assert_eq!(
        validate_blocking(&format!("size({}) == 1", &lists[1..lists.len() - 1])),
        Ok(())
    );
    let mixed = format!(
        "{}1{}",
        "[(".repeat(NESTING_MAX / 2),
        ")]".repeat(NESTING_MAX / 2)
    );
    assert_eq!(validate_blocking(&mixed), Ok(()));
    assert!(matches!(
        validate_blocking(&format!("size({mixed}) == 1")),
        Err(CheckError::TooDeep { .. })
    ));
    // Chains that nest without brackets, as long as the length allows.
    let nots = format!("{}true", "!".repeat(EXPRESSION_MAX - 4));
    let negs = format!("{}1 == 1", "-".repeat(EXPRESSION_MAX - 7));
    let sums = format!("1{} == 0", " + 1".repeat((EXPRESSION_MAX - 6) / 4));
    let ands = format!("true{}", " && true".repeat((EXPRESSION_MAX - 4) / 8));
    let selects = format!("subject{} == 1", ".a".repeat((EXPRESSION_MAX - 12) / 2));
    let mut ternary = String::from("true");
    while ternary.len() + 16 <= EXPRESSION_MAX {
        ternary = format!("true ? {ternary} : false");
    }
    for e in [&nots, &negs, &sums, &ands, &selects, &ternary] {
        assert!(e.len() <= EXPRESSION_MAX);
        // Whatever the parser makes of it, it answers, on its thread.
        let _ = validate_blocking(e);
        let r = eval(e, &fraud_v3());
        assert!(!r.message.is_empty());
    }
}

#[test]
fn over_the_limits_is_refused_before_parsing() {
    let deep = format!("{}true{}", "(".repeat(5000), ")".repeat(5000));
    assert!(matches!(
        validate_blocking(&deep),
        Err(CheckError::TooLong { .. })
    ));
    let deep = format!("{}true{}", "(".repeat(1000), ")".repeat(1000));
    assert!(matches!(
        validate_blocking(&deep),
        Err(CheckError::TooDeep { .. })
    ));
    let long = "a".repeat(1_000_000);
    assert_eq!(
        validate_blocking(&long),
        Err(CheckError::TooLong {
            len: 1_000_000,
            max: EXPRESSION_MAX
        })
    );
    // Stored before a limit changed: an error result, never a crash.
    let r = eval(&deep, &fraud_v3());
    assert_eq!(r.outcome, Outcome::Error);
    assert!(r.message.contains("nests brackets"), "{}", r.message);
}

/// Garbage never passes validation silently as something else and never
/// takes the process down.
#[test]
fn garbage_is_refused() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet: Vec<char> = "()[]{}'\"\\!-+*/%<>=&|?:.,;rb0123456789 \n\tmetricsauc_é\u{0}\u{7f}"
        .chars()
        .collect();
    for _ in 0..300 {
        let len = (next() % 200) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| (next() & 0xff) as u8).collect();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let _ = validate_blocking(&text);
        let s: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let r = validate_blocking(&s);
        if r.is_ok() {
            let out = eval(&s, &fraud_v3());
            assert!(!out.message.is_empty());
        }
    }
    for g in [
        "\u{0}",
        "\u{7f}\u{1}",
        "\u{fffd}\u{fffd}",
        "'unterminated",
        "\"",
        "(((",
    ] {
        assert!(validate_blocking(g).is_err(), "{g:?}");
    }
}

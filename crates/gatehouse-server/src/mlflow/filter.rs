//! MLflow's search syntax for registered models and model versions: filters
//! (`name LIKE 'fraud%' AND tags.team = 'risk'`), `order_by` and page tokens.
//! The client always appends ``tag.`mlflow.prompt.is_prompt` != 'true'`` to
//! a registered-model filter, so a missing tag satisfies `!=` and `NOT IN`.

use std::cmp::Ordering;

use base64::Engine as _;

use super::{MlError, MlResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Name,
    Tag(String),
    RunId,
    SourcePath,
    Version,
    Created,
    Updated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
}

#[derive(Debug, Clone)]
enum Value {
    One(String),
    List(Vec<String>),
}

#[derive(Debug, Clone)]
struct Clause {
    field: Field,
    op: Op,
    value: Value,
}

/// What a filter or an ordering reads of an item.
pub trait Searchable {
    fn text(&self, field: &Field) -> Option<String>;
    fn number(&self, field: &Field) -> Option<i64>;
}

/// The fields a search accepts.
#[derive(Debug, Clone, Copy)]
pub enum Entity {
    RegisteredModel,
    ModelVersion,
}

#[derive(Debug, Clone, Default)]
pub struct Filter(Vec<Clause>);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(String),
    Open,
    Close,
    Comma,
}

fn tokenize(s: &str) -> MlResult<Vec<Token>> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '\'' | '"' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(bad(s, "an unterminated string")),
                        Some('\\') if chars.get(i + 1).is_some() => {
                            v.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(&x) => {
                            v.push(x);
                            i += 1;
                        }
                    }
                }
                out.push(Token::Quoted(v));
            }
            '=' | '!' | '<' | '>' => {
                let mut op = c.to_string();
                if chars.get(i + 1) == Some(&'=') {
                    op.push('=');
                    i += 1;
                }
                i += 1;
                if op == "!" {
                    return Err(bad(s, "'!' without '='"));
                }
                out.push(Token::Op(op));
            }
            _ => {
                // A word: an identifier (with dots and backquoted parts) or a number.
                let mut v = String::new();
                while let Some(&x) = chars.get(i) {
                    if x == '`' {
                        v.push(x);
                        i += 1;
                        while let Some(&y) = chars.get(i) {
                            v.push(y);
                            i += 1;
                            if y == '`' {
                                break;
                            }
                        }
                    } else if x.is_whitespace() || "()=!<>,'\"".contains(x) {
                        break;
                    } else {
                        v.push(x);
                        i += 1;
                    }
                }
                if v.is_empty() {
                    return Err(bad(s, &format!("unexpected character {c:?}")));
                }
                out.push(Token::Word(v));
            }
        }
    }
    Ok(out)
}

fn bad(filter: &str, what: &str) -> MlError {
    MlError::invalid(format!("Invalid filter '{filter}': {what}"))
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2
        && ((s.starts_with('`') && s.ends_with('`')) || (s.starts_with('"') && s.ends_with('"')))
    {
        s[1..s.len() - 1].to_owned()
    } else {
        s.to_owned()
    }
}

fn field_of(word: &str, entity: Entity, filter: &str) -> MlResult<Field> {
    let lower = word.to_ascii_lowercase();
    for prefix in ["tags.", "tag."] {
        if lower.starts_with(prefix) {
            let key = unquote(&word[prefix.len()..]);
            if key.is_empty() {
                return Err(bad(filter, "an empty tag key"));
            }
            return Ok(Field::Tag(key));
        }
    }
    let f = match (unquote(&lower).as_str(), entity) {
        ("name", _) => Field::Name,
        ("run_id", Entity::ModelVersion) => Field::RunId,
        ("source_path", Entity::ModelVersion) => Field::SourcePath,
        ("version_number", Entity::ModelVersion) => Field::Version,
        ("creation_timestamp", _) => Field::Created,
        ("last_updated_timestamp" | "timestamp", _) => Field::Updated,
        _ => return Err(bad(filter, &format!("invalid attribute key '{word}'"))),
    };
    Ok(f)
}

impl Filter {
    pub fn parse(filter: Option<&str>, entity: Entity) -> MlResult<Self> {
        let Some(text) = filter.map(str::trim).filter(|f| !f.is_empty()) else {
            return Ok(Filter::default());
        };
        let tokens = tokenize(text)?;
        let mut it = tokens.into_iter().peekable();
        let mut clauses = Vec::new();
        loop {
            let field = match it.next() {
                Some(Token::Word(w)) => field_of(&w, entity, text)?,
                _ => return Err(bad(text, "expected an attribute or tag")),
            };
            let op = match it.next() {
                Some(Token::Op(o)) => match o.as_str() {
                    "=" | "==" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    ">=" => Op::Ge,
                    _ => return Err(bad(text, &format!("unknown comparator '{o}'"))),
                },
                Some(Token::Word(w)) => match w.to_ascii_uppercase().as_str() {
                    "LIKE" => Op::Like,
                    "ILIKE" => Op::ILike,
                    "IN" => Op::In,
                    "NOT" => match it.next() {
                        Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => Op::NotIn,
                        _ => return Err(bad(text, "expected IN after NOT")),
                    },
                    _ => return Err(bad(text, &format!("unknown comparator '{w}'"))),
                },
                _ => return Err(bad(text, "expected a comparator")),
            };
            let value = if matches!(op, Op::In | Op::NotIn) {
                if it.next() != Some(Token::Open) {
                    return Err(bad(text, "expected a list in parentheses after IN"));
                }
                let mut list = Vec::new();
                loop {
                    match it.next() {
                        Some(Token::Quoted(v)) | Some(Token::Word(v)) => list.push(v),
                        _ => return Err(bad(text, "expected a value in the list")),
                    }
                    match it.next() {
                        Some(Token::Comma) => {}
                        Some(Token::Close) => break,
                        _ => return Err(bad(text, "expected ',' or ')' in the list")),
                    }
                }
                Value::List(list)
            } else {
                match it.next() {
                    Some(Token::Quoted(v)) => Value::One(v),
                    Some(Token::Word(v)) if v.parse::<f64>().is_ok() => Value::One(v),
                    _ => return Err(bad(text, "expected a quoted value or a number")),
                }
            };
            let numeric = matches!(field, Field::Version | Field::Created | Field::Updated);
            if !numeric && matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge) {
                return Err(bad(text, "'<' and '>' compare numbers only"));
            }
            if numeric && matches!(op, Op::Like | Op::ILike) {
                return Err(bad(text, "LIKE compares texts only"));
            }
            clauses.push(Clause { field, op, value });
            match it.next() {
                None => break,
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("and") => {}
                Some(_) => return Err(bad(text, "clauses are joined with AND only")),
            }
        }
        Ok(Filter(clauses))
    }

    /// The exact name this filter asks for, if it does (`name = 'x'`).
    pub fn exact_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find_map(|c| match (&c.field, c.op, &c.value) {
                (Field::Name, Op::Eq, Value::One(v)) => Some(v.as_str()),
                _ => None,
            })
    }

    pub fn matches(&self, item: &impl Searchable) -> bool {
        self.0.iter().all(|c| clause_matches(c, item))
    }
}

fn clause_matches(c: &Clause, item: &impl Searchable) -> bool {
    if matches!(c.field, Field::Version | Field::Created | Field::Updated) {
        let Some(have) = item.number(&c.field) else {
            return false;
        };
        let want = |v: &str| v.trim().parse::<f64>().ok().map(|f| f as i64);
        return match &c.value {
            Value::One(v) => match want(v) {
                Some(w) => match c.op {
                    Op::Eq => have == w,
                    Op::Ne => have != w,
                    Op::Lt => have < w,
                    Op::Le => have <= w,
                    Op::Gt => have > w,
                    Op::Ge => have >= w,
                    _ => false,
                },
                None => false,
            },
            Value::List(list) => {
                let inside = list.iter().any(|v| want(v) == Some(have));
                if c.op == Op::In { inside } else { !inside }
            }
        };
    }
    let have = item.text(&c.field);
    match (&c.value, c.op) {
        (Value::One(v), Op::Eq) => have.as_deref() == Some(v.as_str()),
        (Value::One(v), Op::Ne) => have.as_deref() != Some(v.as_str()),
        (Value::One(v), Op::Like) => have.is_some_and(|h| like(&h, v, false)),
        (Value::One(v), Op::ILike) => have.is_some_and(|h| like(&h, v, true)),
        (Value::List(list), Op::In) => have.is_some_and(|h| list.contains(&h)),
        (Value::List(list), Op::NotIn) => !have.is_some_and(|h| list.contains(&h)),
        _ => false,
    }
}

/// SQL `LIKE`: `%` any run of characters, `_` one character.
pub fn like(text: &str, pattern: &str, ignore_case: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if ignore_case {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (t, p) = (fold(text), fold(pattern));
    // Iterative wildcard matching with backtracking on the last '%'.
    let (mut ti, mut pi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

/// One `order_by` entry.
#[derive(Debug, Clone)]
pub struct OrderKey {
    field: Field,
    descending: bool,
}

pub fn parse_order(list: &[String], entity: Entity) -> MlResult<Vec<OrderKey>> {
    list.iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let mut parts = s.split_whitespace();
            let field_text = parts.next().unwrap_or_default();
            let descending = match parts.next().map(str::to_ascii_uppercase).as_deref() {
                None | Some("ASC") => false,
                Some("DESC") => true,
                Some(other) => {
                    return Err(MlError::invalid(format!(
                        "Invalid order_by clause '{s}': unknown direction '{other}'"
                    )));
                }
            };
            if parts.next().is_some() {
                return Err(MlError::invalid(format!("Invalid order_by clause '{s}'")));
            }
            let field = field_of(field_text, entity, s).map_err(|_| {
                MlError::invalid(format!(
                    "Invalid order_by clause '{s}': unknown attribute '{field_text}'"
                ))
            })?;
            Ok(OrderKey { field, descending })
        })
        .collect()
}

/// Compares two items by the keys, then by the tie-breakers.
pub fn compare<T: Searchable>(a: &T, b: &T, keys: &[OrderKey]) -> Ordering {
    for k in keys {
        let o = match k.field {
            Field::Version | Field::Created | Field::Updated => {
                a.number(&k.field).cmp(&b.number(&k.field))
            }
            _ => a.text(&k.field).cmp(&b.text(&k.field)),
        };
        let o = if k.descending { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

pub fn order_key(field: Field, descending: bool) -> OrderKey {
    OrderKey { field, descending }
}

/// The offset a page token stands for (MLflow's tokens are opaque too).
pub fn page_offset(token: Option<&str>) -> MlResult<usize> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(0);
    };
    let invalid = || MlError::invalid(format!("Invalid page token '{token}'"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let v: serde_json::Value = serde_json::from_slice(&raw).map_err(|_| invalid())?;
    v.get("offset")
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(invalid)
}

pub fn page_token(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::json!({ "offset": offset }).to_string())
}

/// `max_results`: a number from 1 to `max`, `default` when absent.
pub fn max_results(arg: Option<String>, default: usize, max: usize) -> MlResult<usize> {
    match arg {
        None => Ok(default),
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(MlError::invalid(format!(
                "Invalid value for max_results: it must be at most {max} and at least 1, got '{s}'"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Item(&'static str, Option<&'static str>, i64);

    impl Searchable for Item {
        fn text(&self, f: &Field) -> Option<String> {
            match f {
                Field::Name => Some(self.0.to_owned()),
                Field::Tag(k) if k == "team" => self.1.map(str::to_owned),
                _ => None,
            }
        }
        fn number(&self, f: &Field) -> Option<i64> {
            matches!(f, Field::Version).then_some(self.2)
        }
    }

    fn f(s: &str) -> Filter {
        Filter::parse(Some(s), Entity::ModelVersion).unwrap()
    }

    #[test]
    fn the_clients_prompt_filter_keeps_models_without_the_tag() {
        let filter = Filter::parse(
            Some("name LIKE 'fraud%' AND tag.`mlflow.prompt.is_prompt` != 'true'"),
            Entity::RegisteredModel,
        )
        .unwrap();
        assert!(filter.matches(&Item("fraud-scorer", None, 1)));
        assert!(!filter.matches(&Item("churn", None, 1)));
    }

    #[test]
    fn comparators() {
        let it = Item("fraud-scorer", Some("risk"), 3);
        assert!(f("name = 'fraud-scorer'").matches(&it));
        assert!(f("name ILIKE 'FRAUD_%'").matches(&it));
        assert!(!f("name LIKE 'FRAUD%'").matches(&it));
        assert!(f("tags.team IN ('risk', 'ops')").matches(&it));
        assert!(f("tags.`team` NOT IN ('ops')").matches(&it));
        assert!(f("version_number >= 3 AND version_number < 4").matches(&it));
        assert!(f("version_number = '3'").matches(&it));
        assert!(!f("tags.other = 'x'").matches(&it));
    }

    #[test]
    fn bad_filters_are_invalid_parameter_values() {
        for bad in [
            "name",
            "name = ",
            "name = 'x' OR name = 'y'",
            "owner = 'x'",
            "name > 'a'",
            "name = 'x",
        ] {
            let e = Filter::parse(Some(bad), Entity::RegisteredModel).unwrap_err();
            assert_eq!(e.code, "INVALID_PARAMETER_VALUE", "{bad}");
        }
    }

    #[test]
    fn like_wildcards() {
        assert!(like("abc", "a%", false));
        assert!(like("abc", "%c", false));
        assert!(like("abc", "a_c", false));
        assert!(like("abc", "%", false));
        assert!(!like("abc", "a_", false));
        assert!(like("a%c", "a%%c", false));
    }

    #[test]
    fn page_tokens_round_trip() {
        assert_eq!(page_offset(Some(&page_token(42))).unwrap(), 42);
        assert_eq!(page_offset(None).unwrap(), 0);
        assert!(page_offset(Some("garbage!")).is_err());
    }
}

//! MLflow's search syntax for registered models and model versions: filters
//! (`name LIKE 'fraud%' AND tags.team = 'risk'`), `order_by` and page tokens.
//! The client always appends ``tag.`mlflow.prompt.is_prompt` != 'true'`` to
//! a registered-model filter, so a missing tag satisfies `!=` and `NOT IN`.

use base64::Engine as _;
pub use gatehouse_store::mlflow::search::{Clause, Field, Op, OrderKey, Search, Value};

use super::{MlError, MlResult, PROJECT_TAG};

/// The fields a search accepts.
#[derive(Debug, Clone, Copy)]
pub enum Entity {
    RegisteredModel,
    ModelVersion,
}

/// A parsed filter: the conjunction of its clauses, evaluated in SQL.
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
            if key == PROJECT_TAG && matches!(entity, Entity::RegisteredModel) {
                return Ok(Field::Project);
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

    /// The clauses, for the store's search.
    pub fn into_clauses(self) -> Vec<Clause> {
        self.0
    }
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

/// The offset a page token stands for (MLflow's tokens are opaque too).
pub fn page_offset(token: Option<&str>) -> MlResult<u64> {
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
        .ok_or_else(invalid)
}

pub fn page_token(offset: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::json!({ "offset": offset }).to_string())
}

/// `max_results`: a number from 1 to `max`, `default` when absent.
pub fn max_results(arg: Option<String>, default: u64, max: u64) -> MlResult<u64> {
    match arg {
        None => Ok(default),
        Some(s) => match s.trim().parse::<u64>() {
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

    fn clauses(s: &str, entity: Entity) -> Vec<Clause> {
        Filter::parse(Some(s), entity).unwrap().into_clauses()
    }

    fn one(field: Field, op: Op, v: &str) -> Clause {
        Clause {
            field,
            op,
            value: Value::One(v.to_owned()),
        }
    }

    #[test]
    fn the_clients_prompt_filter_parses() {
        assert_eq!(
            clauses(
                "name LIKE 'fraud%' AND tag.`mlflow.prompt.is_prompt` != 'true'",
                Entity::RegisteredModel
            ),
            vec![
                one(Field::Name, Op::Like, "fraud%"),
                one(Field::Tag("mlflow.prompt.is_prompt".into()), Op::Ne, "true"),
            ]
        );
    }

    #[test]
    fn comparators() {
        let v = Entity::ModelVersion;
        assert_eq!(
            clauses("name ILIKE 'FRAUD_%'", v),
            vec![one(Field::Name, Op::ILike, "FRAUD_%")]
        );
        assert_eq!(
            clauses("tags.`team` NOT IN ('ops', \"risk\")", v),
            vec![Clause {
                field: Field::Tag("team".into()),
                op: Op::NotIn,
                value: Value::List(vec!["ops".into(), "risk".into()]),
            }]
        );
        assert_eq!(
            clauses("version_number >= 3 AND version_number < 4", v),
            vec![
                one(Field::Version, Op::Ge, "3"),
                one(Field::Version, Op::Lt, "4")
            ]
        );
        assert_eq!(
            clauses("run_id = 'r1' AND source_path = 's3://x'", v),
            vec![
                one(Field::RunId, Op::Eq, "r1"),
                one(Field::SourcePath, Op::Eq, "s3://x")
            ]
        );
        assert_eq!(
            clauses("tags.`gatehouse.project` = 'ML'", Entity::RegisteredModel),
            vec![one(Field::Project, Op::Eq, "ML")]
        );
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
            "run_id = 'r'",
        ] {
            let e = Filter::parse(Some(bad), Entity::RegisteredModel).unwrap_err();
            assert_eq!(e.code, "INVALID_PARAMETER_VALUE", "{bad}");
        }
    }

    #[test]
    fn page_tokens_round_trip() {
        assert_eq!(page_offset(Some(&page_token(42))).unwrap(), 42);
        assert_eq!(page_offset(None).unwrap(), 0);
        assert!(page_offset(Some("garbage!")).is_err());
    }
}

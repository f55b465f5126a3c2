//! Shared arguments and the checks on local input, done before any request is sent.

use std::io::{BufRead, IsTerminal};

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use gatehouse_core::authz::ProjectRole;
use gatehouse_core::gate::EmergencyState;
use gatehouse_core::inventory::{InfraKind, Policy, Stage};
use gatehouse_core::signoff::{Decision, SignoffState};
use serde_json::{Map, Number, Value};

use super::error::CliError;

/// A core enum written as a fixed word (`api_node`, `in_review`, …): the
/// command line takes the same words as the API, from the core's list.
pub trait Word: Copy + Send + Sync + 'static {
    /// Every value, in the core's order (the order `--help` lists them in).
    const WORDS: &'static [Self];
    fn text(self) -> &'static str;
}

macro_rules! words {
    ($($t:ty),+ $(,)?) => {$(
        impl Word for $t {
            const WORDS: &'static [Self] = <$t>::ALL;
            fn text(self) -> &'static str {
                self.as_str()
            }
        }
    )+};
}

words!(
    InfraKind,
    Stage,
    Policy,
    SignoffState,
    Decision,
    gatehouse_core::risk::Consumers,
    gatehouse_core::risk::Availability,
    gatehouse_core::risk::Impact,
    gatehouse_core::risk::Regulation,
    gatehouse_core::risk::DecisionLifetime,
    gatehouse_core::risk::Explainability,
);

impl Word for EmergencyState {
    const WORDS: &'static [Self] = &[
        EmergencyState::Open,
        EmergencyState::Accepted,
        EmergencyState::RollbackOrdered,
    ];
    fn text(self) -> &'static str {
        self.as_str()
    }
}

impl Word for ProjectRole {
    const WORDS: &'static [Self] = &[ProjectRole::Owner, ProjectRole::Contributor];
    fn text(self) -> &'static str {
        self.as_str()
    }
}

/// The clap parser of a core enum: exactly its words, listed in `--help`.
pub fn word<T: Word>() -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(T::WORDS.iter().map(|v| v.text())).map(|text| {
        T::WORDS
            .iter()
            .copied()
            .find(|v| v.text() == text)
            .expect("clap accepts only the possible values")
    })
}

/// The word a value is sent as.
pub fn wire<T: Word>(v: T) -> String {
    v.text().to_string()
}

/// Paging options of every list command.
#[derive(Args, Clone, Default)]
pub struct PageArgs {
    /// Answer at most N items (1–500; the server's default is 100)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: Option<u32>,
    /// Start after this cursor (the `next_cursor` of the previous page)
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
    /// Follow `next_cursor` and print every page
    #[arg(long)]
    pub all: bool,
}

impl PageArgs {
    /// Every page, for commands that show a whole list without paging options.
    pub fn every_page() -> Self {
        Self {
            all: true,
            ..Self::default()
        }
    }
}

/// Where a password comes from: `--password-stdin`, `--password`, or a prompt.
#[derive(Args, Clone, Default)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input
    #[arg(long, conflicts_with = "password")]
    pub password_stdin: bool,
    /// The password (visible to other local users in the process list; prefer --password-stdin)
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
}

impl PasswordArgs {
    /// The password given with `--password-stdin` or `--password`, if any.
    pub fn given(&self) -> Result<Option<String>, CliError> {
        let pw = if self.password_stdin {
            Some(read_stdin_line("password")?)
        } else {
            self.password.clone()
        };
        match pw {
            Some(p) if p.is_empty() => Err(CliError::input("the password must not be empty")),
            other => Ok(other),
        }
    }

    /// The password, prompting on the terminal when none was given (twice when
    /// `confirm`, for a new password).
    pub fn get_or_prompt(&self, confirm: bool) -> Result<String, CliError> {
        if let Some(p) = self.given()? {
            return Ok(p);
        }
        if !std::io::stdin().is_terminal() {
            return Err(CliError::input(
                "no password given and no terminal to ask on: use --password-stdin",
            ));
        }
        let prompt = if confirm {
            "New password: "
        } else {
            "Password: "
        };
        let first = rpassword::prompt_password(prompt)
            .map_err(|e| CliError::input(format!("cannot read the password: {e}")))?;
        if first.is_empty() {
            return Err(CliError::input("the password must not be empty"));
        }
        if confirm {
            let again = rpassword::prompt_password("Repeat the new password: ")
                .map_err(|e| CliError::input(format!("cannot read the password: {e}")))?;
            if again != first {
                return Err(CliError::input("the passwords do not match"));
            }
        }
        Ok(first)
    }
}

/// One line of standard input, without its line ending.
pub fn read_stdin_line(what: &str) -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::input(format!("cannot read the {what} from standard input: {e}")))?;
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    Ok(line)
}

/// Asks for one line on the terminal (for a username); None without a terminal.
pub fn prompt_line(prompt: &str) -> Result<Option<String>, CliError> {
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    err!("{prompt}");
    read_stdin_line("answer").map(|s| Some(s.trim().to_string()))
}

/// Splits `NAME=VALUE` given to `option`.
fn split_pair<'a>(option: &str, raw: &'a str, shape: &str) -> Result<(&'a str, &'a str), CliError> {
    match raw.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim(), v)),
        Some(_) => Err(CliError::input(format!(
            "{option} {raw:?}: the name before '=' is empty; expected {shape}"
        ))),
        None => Err(CliError::input(format!(
            "{option} {raw:?}: expected {shape}"
        ))),
    }
}

/// `--param k=v`, `--tag k=v`: a string map, each name at most once.
pub fn string_map(option: &str, raw: &[String]) -> Result<Map<String, Value>, CliError> {
    let mut map = Map::new();
    for r in raw {
        let (k, v) = split_pair(option, r, "NAME=VALUE")?;
        if map
            .insert(k.to_string(), Value::String(v.to_string()))
            .is_some()
        {
            return Err(CliError::input(format!("{option} {k:?} is given twice")));
        }
    }
    Ok(map)
}

/// `--metric auc=0.93`: a map of finite numbers, each name at most once.
pub fn metric_map(raw: &[String]) -> Result<Map<String, Value>, CliError> {
    let mut map = Map::new();
    for r in raw {
        let (k, v) = split_pair("--metric", r, "NAME=NUMBER")?;
        let n: f64 = v.trim().parse().map_err(|_| {
            CliError::input(format!(
                "--metric {r:?}: {v:?} is not a number; expected NAME=NUMBER"
            ))
        })?;
        let number = if n.fract() == 0.0 && n.abs() < 9.0e15 && !v.contains(['.', 'e', 'E']) {
            Number::from(n as i64)
        } else {
            Number::from_f64(n).ok_or_else(|| {
                CliError::input(format!("--metric {r:?}: the value must be a finite number"))
            })?
        };
        if map.insert(k.to_string(), Value::Number(number)).is_some() {
            return Err(CliError::input(format!("--metric {k:?} is given twice")));
        }
    }
    Ok(map)
}

/// `--version MODEL:N` of a bundle; the model name may itself hold ':', so the
/// number is what follows the last one.
pub fn bundle_version(raw: &str) -> Result<Value, CliError> {
    let bad = |why: &str| CliError::input(format!("--version {raw:?}: {why}; expected MODEL:N"));
    let (model, n) = raw.rsplit_once(':').ok_or_else(|| bad("no ':'"))?;
    if model.is_empty() {
        return Err(bad("the model name is empty"));
    }
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| bad("the version is not a whole number"))?;
    if n == 0 {
        return Err(bad("versions start at 1"));
    }
    Ok(serde_json::json!({ "model": model, "version": n }))
}

/// A `KEY=VALUE` given to a list filter such as `--tag`, passed on as is.
pub fn check_pair(option: &str, raw: &str) -> Result<String, CliError> {
    split_pair(option, raw, "KEY=VALUE").map(|_| raw.to_string())
}

/// Query parameters from optional filters.
#[derive(Default)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn opt(mut self, name: &str, value: Option<impl ToString>) -> Self {
        if let Some(v) = value {
            self.0.push((name.to_string(), v.to_string()));
        }
        self
    }
}

/// A JSON object of the optional fields that were given.
#[derive(Default)]
pub struct Body(pub Map<String, Value>);

impl Body {
    pub fn set(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.0.insert(name.to_string(), value.into());
        self
    }

    pub fn opt(self, name: &str, value: Option<impl Into<Value>>) -> Self {
        match value {
            Some(v) => self.set(name, v),
            None => self,
        }
    }

    /// For an update: refuses to send an empty change.
    pub fn non_empty(self, hint: &str) -> Result<Value, CliError> {
        if self.0.is_empty() {
            return Err(CliError::input(format!("nothing to change: give {hint}")));
        }
        Ok(Value::Object(self.0))
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn metrics_need_a_name_and_a_finite_number() {
        let m = metric_map(&s(&["auc=0.93", "rows=1200", "loss=-1e-3"])).unwrap();
        assert_eq!(m["auc"], serde_json::json!(0.93));
        assert_eq!(m["rows"], serde_json::json!(1200));
        assert_eq!(m["loss"], serde_json::json!(-0.001));
        for bad in ["auc", "auc=", "auc=high", "=1", "auc=NaN", "auc=inf"] {
            let e = metric_map(&s(&[bad])).unwrap_err();
            assert_eq!(e.exit_code(), 1, "{bad}");
        }
        assert!(metric_map(&s(&["a=1", "a=2"])).is_err());
    }

    #[test]
    fn string_maps_keep_everything_after_the_first_equals() {
        let m = string_map("--tag", &s(&["team=fraud", "expr=a=b", "empty="])).unwrap();
        assert_eq!(m["expr"], "a=b");
        assert_eq!(m["empty"], "");
        assert!(string_map("--tag", &s(&["team"])).is_err());
    }

    #[test]
    fn bundle_versions_split_on_the_last_colon() {
        assert_eq!(
            bundle_version("ns:fraud scorer:3").unwrap(),
            serde_json::json!({"model": "ns:fraud scorer", "version": 3})
        );
        for bad in ["fraud", "fraud:", ":3", "fraud:x", "fraud:0", "fraud:-1"] {
            assert!(bundle_version(bad).is_err(), "{bad}");
        }
    }
}

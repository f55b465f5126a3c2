//! The stored login: `credentials.toml` (server and token, mode 0600) in the
//! user's configuration directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::CliError;

const FILE_NAME: &str = "credentials.toml";

/// What `gatehouse login` stores.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub server: String,
    pub token: String,
    /// Who logged in (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The token's id, so `logout` can revoke it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

/// `$GATEHOUSE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/gatehouse`, else `~/.config/gatehouse`.
pub fn config_dir() -> Result<PathBuf, CliError> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("GATEHOUSE_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(xdg) = var("XDG_CONFIG_HOME").map(PathBuf::from)
        && xdg.is_absolute()
    {
        return Ok(xdg.join("gatehouse"));
    }
    if let Some(home) = var("HOME") {
        return Ok(PathBuf::from(home).join(".config").join("gatehouse"));
    }
    Err(CliError::other(
        "cannot find a configuration directory: set GATEHOUSE_CONFIG_DIR or HOME",
    ))
}

pub fn credentials_path() -> Result<PathBuf, CliError> {
    Ok(config_dir()?.join(FILE_NAME))
}

/// The stored login, if there is one.
pub fn load() -> Result<Option<Credentials>, CliError> {
    let path = credentials_path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CliError::other(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    toml::from_str(&text).map(Some).map_err(|e| {
        CliError::other(format!(
            "{} is not a valid credentials file ({}); run `gatehouse login` again",
            path.display(),
            e.message()
        ))
    })
}

/// Stores the login atomically, readable by the user only.
pub fn save(creds: &Credentials) -> Result<PathBuf, CliError> {
    let path = credentials_path()?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |what: &str, e: std::io::Error| {
        CliError::other(format!("cannot {what} {}: {e}", path.display()))
    };
    create_private_dir(dir).map_err(|e| fail("create the directory of", e))?;
    let text = toml::to_string(creds)
        .map_err(|e| CliError::other(format!("cannot encode the credentials: {e}")))?;
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = open_private(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    Ok(path)
}

/// Forgets the stored login; true when there was one.
pub fn remove() -> Result<bool, CliError> {
    let path = credentials_path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CliError::other(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// Server URLs compare equal when they differ only by a trailing slash.
pub fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_round_trip_and_tolerate_missing_extras() {
        let c: Credentials = toml::from_str("server = \"http://h:1\"\ntoken = \"t\"\n").unwrap();
        assert_eq!(c.server, "http://h:1");
        assert!(c.username.is_none());
        let text = toml::to_string(&Credentials {
            username: Some("alice".into()),
            token_id: Some("7".into()),
            ..c
        })
        .unwrap();
        let back: Credentials = toml::from_str(&text).unwrap();
        assert_eq!(back.token, "t");
        assert_eq!(back.token_id.as_deref(), Some("7"));
    }

    #[test]
    fn trailing_slashes_do_not_matter() {
        assert!(same_server("http://h:1/", "http://h:1"));
        assert!(!same_server("http://h:1", "http://h:2"));
    }
}

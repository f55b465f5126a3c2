//! Where the key that signs audit checkpoints comes from, and its file formats.
//!
//! A key file holds the 32-byte Ed25519 seed either as PKCS#8 PEM
//! (`-----BEGIN PRIVATE KEY-----`, what `openssl genpkey -algorithm ed25519`
//! writes, and what the server generates) or as the raw 32 bytes.
//! `GATEHOUSE_AUDIT_KEY` holds the seed in standard base64.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gatehouse_core::audit_key::{AuditPublicKey, AuditSigner};
use gatehouse_store::Backend;
use rand::RngCore;

/// DER prefix of a PKCS#8 Ed25519 private key (RFC 8410); the seed follows.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the key follows.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// File name of the generated key, next to the SQLite database.
pub const DEFAULT_KEY_FILE: &str = "audit-key.pem";

/// How the server gets its audit signing key.
#[derive(Clone, Debug, Default)]
pub enum AuditKeySource {
    /// The key itself (`GATEHOUSE_AUDIT_KEY`, or a fixed key in tests).
    Key(Box<AuditSigner>),
    /// A key file: PKCS#8 PEM or a raw 32-byte seed.
    File(PathBuf),
    /// Nothing configured: on SQLite `audit-key.pem` next to the database file,
    /// generated (mode 0600) on first start; refused on PostgreSQL, whose
    /// replicas must all sign with one configured key.
    #[default]
    Default,
}

/// The one-line error when PostgreSQL has no configured key.
pub const POSTGRES_NEEDS_KEY: &str = "PostgreSQL needs an audit signing key shared by every replica: \
set GATEHOUSE_AUDIT_KEY_FILE (or --audit-key-file, or audit_key_file in gatehouse.toml) to a PKCS#8 PEM \
Ed25519 key such as `openssl genpkey -algorithm ed25519` writes, or GATEHOUSE_AUDIT_KEY to a base64 32-byte seed";

/// Resolves the signing key for a server on `database_url`.
pub fn resolve(source: &AuditKeySource, database_url: &str) -> Result<AuditSigner, String> {
    match source {
        AuditKeySource::Key(k) => Ok((**k).clone()),
        AuditKeySource::File(path) => read_key_file(path),
        AuditKeySource::Default => {
            match Backend::from_url(database_url).map_err(|e| e.to_string())? {
                Backend::Postgres => Err(POSTGRES_NEEDS_KEY.to_owned()),
                Backend::Sqlite => {
                    let db = sqlite_path(database_url).ok_or_else(|| {
                        format!(
                            "an in-memory database has no directory for a generated audit key: \
                             set GATEHOUSE_AUDIT_KEY_FILE or GATEHOUSE_AUDIT_KEY ({database_url:?})"
                        )
                    })?;
                    let dir = db.parent().unwrap_or(Path::new("."));
                    load_or_generate(&dir.join(DEFAULT_KEY_FILE))
                }
            }
        }
    }
}

/// The file of a `sqlite:` URL, unless it is in memory.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// The seed from `GATEHOUSE_AUDIT_KEY` (standard base64 of 32 bytes).
pub fn from_base64_seed(text: &str) -> Result<AuditSigner, String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| "GATEHOUSE_AUDIT_KEY is not base64".to_owned())?;
    let seed: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "GATEHOUSE_AUDIT_KEY must be the base64 of a 32-byte Ed25519 seed, not {} bytes",
            b.len()
        )
    })?;
    Ok(AuditSigner::from_seed(seed))
}

/// Reads a key file: PKCS#8 PEM, or exactly 32 raw bytes.
pub fn read_key_file(path: &Path) -> Result<AuditSigner, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the audit key file {}: {e}", path.display()))?;
    parse_key(&bytes).map_err(|why| format!("audit key file {}: {why}", path.display()))
}

fn parse_key(bytes: &[u8]) -> Result<AuditSigner, String> {
    if let Ok(seed) = <[u8; 32]>::try_from(bytes) {
        return Ok(AuditSigner::from_seed(seed));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "neither PEM text nor a raw 32-byte seed".to_owned())?;
    let body = pem_body(text, "PRIVATE KEY").ok_or_else(|| {
        "expected a '-----BEGIN PRIVATE KEY-----' PEM block or a raw 32-byte seed".to_owned()
    })?;
    let der = STANDARD
        .decode(body)
        .map_err(|_| "the PEM block is not valid base64".to_owned())?;
    match der.strip_prefix(&PKCS8_PREFIX[..]) {
        Some(seed) if seed.len() == 32 => {
            let seed: [u8; 32] = seed.try_into().map_err(|_| "bad seed length".to_owned())?;
            Ok(AuditSigner::from_seed(seed))
        }
        _ => Err("the PEM block is not a PKCS#8 Ed25519 private key".to_owned()),
    }
}

fn pem_body(text: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    Some(text[start..stop].split_whitespace().collect())
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The private key as PKCS#8 PEM.
pub fn private_pem(signer: &AuditSigner) -> String {
    let mut der = PKCS8_PREFIX.to_vec();
    der.extend_from_slice(&signer.seed());
    pem("PRIVATE KEY", &der)
}

/// The public key as SubjectPublicKeyInfo PEM (for `openssl pkeyutl -verify`).
pub fn public_pem(key: &AuditPublicKey) -> String {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(key.as_bytes());
    pem("PUBLIC KEY", &der)
}

/// Loads the key at `path`, or creates one there (mode 0600) if there is none.
fn load_or_generate(path: &Path) -> Result<AuditSigner, String> {
    if path.exists() {
        return read_key_file(path);
    }
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let signer = AuditSigner::from_seed(seed);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut f = create_private(path)
        .map_err(|e| format!("cannot create the audit key file {}: {e}", path.display()))?;
    f.write_all(private_pem(&signer).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write the audit key file {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), key_id = signer.key_id(), "generated the audit signing key");
    Ok(signer)
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_and_raw_seeds_round_trip() {
        let s = AuditSigner::from_seed([3; 32]);
        let pem = private_pem(&s);
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(parse_key(pem.as_bytes()).unwrap().key_id(), s.key_id());
        assert_eq!(parse_key(&[3; 32]).unwrap().key_id(), s.key_id());
        assert!(parse_key(b"hello").is_err());
        assert!(
            parse_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err()
        );
        let b64 = STANDARD.encode([3u8; 32]);
        assert_eq!(from_base64_seed(&b64).unwrap().key_id(), s.key_id());
        assert!(from_base64_seed("AAAA").is_err());
        assert!(from_base64_seed("!!").is_err());
    }

    #[test]
    fn openssl_keys_parse() {
        // `openssl genpkey -algorithm ed25519` of the RFC 8032 TEST 1 seed.
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
        let s = parse_key(pem.as_bytes()).unwrap();
        assert_eq!(
            s.public_key().to_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert!(
            public_pem(&s.public_key())
                .contains("MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
        );
    }

    #[test]
    fn default_source_generates_next_to_sqlite_and_refuses_postgres() {
        let dir = tempfile_dir();
        let url = format!("sqlite:{}", dir.join("g.db").display());
        let a = resolve(&AuditKeySource::Default, &url).unwrap();
        let b = resolve(&AuditKeySource::Default, &url).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(DEFAULT_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let e = resolve(&AuditKeySource::Default, "postgres://u@h/db").unwrap_err();
        assert_eq!(e, POSTGRES_NEEDS_KEY);
        assert!(!e.contains('\n'));
        assert!(resolve(&AuditKeySource::Default, "sqlite::memory:").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let mut seed = [0u8; 8];
        rand::rng().fill_bytes(&mut seed);
        let dir = std::env::temp_dir().join(format!("gatehouse-key-test-{}", hex::encode(seed)));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

//! Authentication: argon2id password hashes, random API tokens stored only as
//! SHA-256 hashes, the `Auth` extractor, and the bootstrap of the first admin.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use gatehouse_core::authz::Principal;
use gatehouse_store::tokens::{self, TokenUse};
use gatehouse_store::{Ctx, users};
use rand::RngCore;
use sha2::{Digest as _, Sha256};

use crate::app::{AppState, Bootstrap, Secret, StartError};
use crate::error::ApiError;

/// Prefix of every API token, so leaked tokens are recognisable by scanners.
pub const TOKEN_PREFIX: &str = "gh_";
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 1024;

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            ApiError::internal()
        })
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// A real argon2id hash of nothing in particular, to verify against when a
/// login names an unknown user.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no such user").unwrap_or_default())
}

pub fn check_password_rules(field: &str, password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < PASSWORD_MIN {
        return Err(ApiError::invalid(
            field,
            format!("must be at least {PASSWORD_MIN} characters"),
        ));
    }
    if n > PASSWORD_MAX {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {PASSWORD_MAX} characters"),
        ));
    }
    Ok(())
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// A new token secret: shown once, never stored.
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", random_b64(32))
}

/// What is stored for a token: hex SHA-256 of its text (tokens are long and
/// random, so a fast hash is enough).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl Auth {
    pub fn ctx(&self, state: &AppState) -> Ctx {
        Ctx {
            actor: self.0.clone(),
            now: state.clock.now(),
        }
    }
}

/// The bearer token of a request, if it has an `Authorization: Bearer` header.
pub fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthenticated("the Authorization header is not valid text"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::unauthenticated(
            "use an 'Authorization: Bearer <token>' header",
        )),
    }
}

/// A caller authenticated by a token, and that token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub token: TokenUse,
}

/// The caller behind a bearer token that is neither revoked nor expired, of
/// an enabled user. Writes down the token's use at most once a minute.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let now = state.clock.now();
    let hash = token_hash(token);
    let cached = state
        .caches
        .tokens
        .get_at(state.store.accounts_generation(), &hash)
        .filter(|(_, t)| t.expires_at.is_none_or(|e| e > now));
    let found = match cached {
        Some(found) => Some(found),
        None => {
            let generation = state.store.accounts_generation();
            let mut conn = state.store.conn().await?;
            let found = tokens::authenticate(&mut conn, &hash, now).await?;
            drop(conn);
            if let Some(f) = &found {
                state.caches.tokens.put(generation, hash.clone(), f.clone());
            }
            found
        }
    };
    match found {
        Some((c, t)) if !c.user.disabled => {
            if t.worth_recording(now) {
                match tokens::record_use(&state.store, t.id, now).await {
                    Ok(()) => state
                        .caches
                        .tokens
                        .update(&hash, |(_, t)| t.last_used_at = Some(now)),
                    // Bookkeeping only: the request goes on.
                    Err(e) => {
                        tracing::warn!(error = %e, token = t.id, "cannot record a token's use")
                    }
                }
            }
            Ok(Caller {
                principal: Principal {
                    username: c.user.username,
                    is_admin: c.user.is_admin,
                },
                token: t,
            })
        }
        Some(_) => Err(ApiError::unauthenticated(
            "the user of this token is disabled",
        )),
        None => Err(ApiError::unauthenticated(
            "the token is invalid, expired or revoked",
        )),
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(parts)? {
            Some(token) => Ok(Auth(authenticate(state, token).await?.principal)),
            None => Err(ApiError::unauthenticated(
                "this endpoint needs a token: 'Authorization: Bearer <token>' (get one with POST /api/v1/tokens)",
            )),
        }
    }
}

/// Optional authentication, for the one endpoint that also accepts a password.
#[derive(Debug, Clone)]
pub struct MaybeAuth(pub Option<Caller>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(parts)? {
            Some(token) => Ok(MaybeAuth(Some(authenticate(state, token).await?))),
            None => Ok(MaybeAuth(None)),
        }
    }
}

/// The client's address, when the server was started with connection info
/// (it always is; a router built without it, as in unit tests, has none).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// The server itself as an actor (bootstrap, demo seeding, scheduled work).
pub fn system_principal() -> Principal {
    Principal {
        username: gatehouse_core::Username::parse("system").expect("'system' is a valid username"),
        is_admin: true,
    }
}

/// Makes the server's audit signing key known (a new key retires the older ones,
/// which stay for verification).
pub async fn register_audit_key(
    store: &gatehouse_store::Store,
    clock: &crate::Clock,
    signer: &gatehouse_core::audit_key::AuditSigner,
) -> Result<(), StartError> {
    let system = system_principal();
    let right =
        gatehouse_core::authz::admin(&system).map_err(|e| StartError::Other(e.to_string()))?;
    let ctx = Ctx {
        actor: system,
        now: clock.now(),
    };
    let mut tx = store.begin().await?;
    let added = gatehouse_store::audit::register_key(&mut tx, &right, &ctx, signer).await?;
    tx.commit().await?;
    if added {
        tracing::info!(
            key_id = signer.key_id(),
            "registered a new audit signing key"
        );
    }
    Ok(())
}

/// On an empty database, creates `admin` with the configured password or a
/// generated one-time password. In demo mode the default is `demo-admin`.
pub async fn bootstrap(
    state: &AppState,
    password: Option<&Secret>,
    demo: bool,
) -> Result<Bootstrap, StartError> {
    let mut conn = state.store.conn().await?;
    if users::count(&mut conn).await? > 0 {
        return Ok(Bootstrap::Existing);
    }
    drop(conn);
    let (pw, outcome) = match password {
        Some(p) => (p.clone(), Bootstrap::AdminFromSettings),
        None if demo => (
            Secret::new(crate::demo::ADMIN_PASSWORD),
            Bootstrap::AdminDemo,
        ),
        None => {
            let p = Secret::new(random_b64(18));
            (p.clone(), Bootstrap::AdminGenerated(p))
        }
    };
    let hash = hash_password(pw.expose())
        .map_err(|_| StartError::Other("cannot hash the admin password".into()))?;
    let ctx = Ctx {
        actor: system_principal(),
        now: state.clock.now(),
    };
    let mut tx = state.store.begin().await?;
    users::bootstrap_admin(&mut tx, &ctx, hash).await?;
    tx.commit().await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() > 40);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}

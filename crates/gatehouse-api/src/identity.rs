//! Tokens: minting one (with a password or a token), listing and revoking.

use gatehouse_core::{Timestamp, Username};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The longest token lifetime, in days, a server may be configured with or
/// an administrator may ask for.
pub const MAX_TOKEN_DAYS: u32 = 36_500;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Token {
    pub id: i64,
    pub name: String,
    #[schema(value_type = String)]
    pub username: Username,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When the token stops working; `null`: never (given by an administrator).
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub expires_at: Option<Timestamp>,
    /// When the token was last used, to the minute; `null`: not yet.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub last_used_at: Option<Timestamp>,
    /// The token that minted this one (`null`: minted with a password). A
    /// token never outlives its parent and is revoked with it.
    #[schema(required = true)]
    pub parent_id: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A name to recognise the token by, e.g. `laptop` or `ci`.
    #[schema(
        max_length = 256,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: String,
    /// With `password`: log in without a token.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Days until the token expires: 1 up to the server's token lifetime
    /// (90 by default), which is also the default. Administrators may ask for
    /// more, or for `"never"`. A token minted with a token never outlives it.
    pub expires_in_days: Option<ExpiresIn>,
}

/// A number of days, or `"never"`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ExpiresIn {
    Days(u32),
    Never(NeverExpires),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NeverExpires {
    Never,
}

impl<'de> Deserialize<'de> for ExpiresIn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ExpiresIn;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of days, or \"never\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ExpiresIn, E> {
                u32::try_from(v)
                    .map(ExpiresIn::Days)
                    .map_err(|_| E::custom(format!("must be at most {MAX_TOKEN_DAYS}")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ExpiresIn, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom("must be at least 1")),
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ExpiresIn, E> {
                match v {
                    "never" => Ok(ExpiresIn::Never(NeverExpires::Never)),
                    _ => Err(E::custom("must be a number of days, or \"never\"")),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewToken {
    pub id: i64,
    pub name: String,
    pub username: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When the token stops working; `null`: never.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub expires_at: Option<Timestamp>,
    /// The token it was minted with (`null`: minted with a password).
    #[schema(required = true)]
    pub parent_id: Option<i64>,
    /// The secret. Shown only in this answer; store it safely.
    pub token: String,
}

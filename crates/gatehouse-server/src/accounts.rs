//! Accounts under abuse: the lifetime of new API tokens, and password checks
//! that an attacker cannot use as an oracle or a furnace. Failed logins are
//! throttled per username and per client address with `governor`'s keyed
//! GCRA limiters (a burst of N failures, then one more every window / N);
//! argon2 runs on blocking threads behind a small semaphore; an unknown user
//! or a password-less account costs the same argon2 work as a real one.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::{NotKeyed, StateStore};
use governor::{Quota, RateLimiter};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

use crate::auth;
use crate::error::ApiError;

/// Default of [`crate::Settings::token_ttl_days`].
pub const DEFAULT_TOKEN_TTL_DAYS: u32 = 90;
pub use gatehouse_api::identity::MAX_TOKEN_DAYS;

/// How many failed logins are tolerated before answering 429.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// Failures per username within `window` (0: unlimited).
    pub failures_per_user: u32,
    /// Failures per client address within `window` (0: unlimited). Higher
    /// than per user: many people may share an address.
    pub failures_per_address: u32,
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            failures_per_user: 5,
            failures_per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// A password check refused because of earlier failures.
#[derive(Debug, Clone, Copy)]
pub struct Throttled {
    /// How long until the next attempt is heard.
    pub retry_after: Duration,
}

impl Throttled {
    /// 429 `rate_limited` with `Retry-After` in whole seconds (at least 1).
    pub fn into_error(self) -> ApiError {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        let secs = secs.max(1);
        ApiError::rate_limited(
            format!("too many failed logins; retry in {secs} seconds"),
            secs,
        )
    }
}

/// Account policy and the login throttle of one server.
pub struct Accounts {
    token_ttl_days: u32,
    users: Option<FailureLimiter<String>>,
    addresses: Option<FailureLimiter<IpAddr>>,
    hashing: Semaphore,
    /// Failed password checks (also paces the limiters' housekeeping).
    failures: Counter,
    throttled: Counter,
}

/// Usernames longer than any valid one are cut, so keys stay small.
const KEY_MAX_CHARS: usize = 128;
/// Forget keys whose failures have all expired every this many failures.
const HOUSEKEEPING_EVERY: u64 = 1024;

impl Accounts {
    pub fn new(token_ttl_days: u32, limits: &LoginLimits) -> Result<Self, String> {
        if !(1..=MAX_TOKEN_DAYS).contains(&token_ttl_days) {
            return Err(format!(
                "the token lifetime must be 1 to {MAX_TOKEN_DAYS} days, not {token_ttl_days}"
            ));
        }
        let permits = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 4);
        Ok(Self {
            token_ttl_days,
            users: FailureLimiter::new(limits.failures_per_user, limits.window)?,
            addresses: FailureLimiter::new(limits.failures_per_address, limits.window)?,
            hashing: Semaphore::new(permits),
            failures: Counter::default(),
            throttled: Counter::default(),
        })
    }

    /// Lifetime of new tokens, in days.
    pub fn token_ttl_days(&self) -> u32 {
        self.token_ttl_days
    }

    /// Login attempts answered 429 since the start.
    pub fn throttled_total(&self) -> u64 {
        self.throttled.get()
    }

    /// Failed password checks since the start.
    pub fn failures_total(&self) -> u64 {
        self.failures.get()
    }

    /// Registers the throttle's counters (`gatehouse_login_failures_total`,
    /// `gatehouse_login_throttled_total`).
    pub(crate) fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "gatehouse_login_failures",
            "Failed password checks (logins and current passwords)",
            self.failures.clone(),
        );
        registry.register(
            "gatehouse_login_throttled",
            "Password checks refused with 429 after too many failures",
            self.throttled.clone(),
        );
    }

    /// Checks `password` for `username`, calling from `addr`, against `hash`
    /// (`None`: unknown user or no password; the same work is done against a
    /// dummy hash and the answer is no). Refused without checking while the
    /// username or the address is throttled; a wrong password counts as a
    /// failure of both.
    pub async fn check_password(
        &self,
        username: &str,
        addr: Option<IpAddr>,
        password: &str,
        hash: Option<&str>,
    ) -> Result<bool, Throttled> {
        let user_key = user_key(username);
        self.throttled_for(&user_key, addr)?;
        // Checked again once a hashing slot is ours: of the attempts queued
        // meanwhile, only as many as there are slots can pass one limit.
        let _permit = self.hashing.acquire().await;
        self.throttled_for(&user_key, addr)?;
        let known = hash.is_some();
        let (pw, h) = (
            password.to_owned(),
            hash.unwrap_or_else(|| auth::dummy_hash()).to_owned(),
        );
        let ok = tokio::task::spawn_blocking(move || auth::verify_password(&pw, &h))
            .await
            .unwrap_or(false)
            && known;
        if !ok {
            self.record_failure(&user_key, addr);
        }
        Ok(ok)
    }

    /// Counts a failed login that passed the password check (a disabled user).
    pub fn record_failed_login(&self, username: &str, addr: Option<IpAddr>) {
        self.record_failure(&user_key(username), addr);
    }

    /// Hashes a new password with argon2id on a blocking thread, within the
    /// same concurrency limit as the checks.
    pub async fn hash_password(&self, password: &str) -> Result<String, ApiError> {
        let _permit = self.hashing.acquire().await;
        let p = password.to_owned();
        tokio::task::spawn_blocking(move || auth::hash_password(&p))
            .await
            .map_err(|_| ApiError::internal())?
    }

    fn throttled_for(&self, user_key: &String, addr: Option<IpAddr>) -> Result<(), Throttled> {
        let waits = [
            self.users.as_ref().and_then(|l| l.wait(user_key)),
            self.addresses
                .as_ref()
                .zip(addr)
                .and_then(|(l, a)| l.wait(&a)),
        ];
        match waits.into_iter().flatten().max() {
            Some(retry_after) => {
                self.throttled.inc();
                Err(Throttled { retry_after })
            }
            None => Ok(()),
        }
    }

    fn record_failure(&self, user_key: &String, addr: Option<IpAddr>) {
        if let Some(l) = &self.users {
            l.record(user_key);
        }
        if let (Some(l), Some(a)) = (&self.addresses, addr) {
            l.record(&a);
        }
        let n = self.failures.inc() + 1;
        if n.is_multiple_of(HOUSEKEEPING_EVERY) {
            if let Some(l) = &self.users {
                l.housekeeping();
            }
            if let Some(l) = &self.addresses {
                l.housekeeping();
            }
        }
    }
}

fn user_key(username: &str) -> String {
    username.chars().take(KEY_MAX_CHARS).collect()
}

/// A keyed GCRA limiter over failures. Throttling must be decided before the
/// password is checked, yet only failures may count: the store answers
/// probes (would one more failure conform now?) without changing anything.
struct FailureLimiter<K: Hash + Eq + Clone> {
    limiter: RateLimiter<Probe<K>, ProbeStore<K>, DefaultClock>,
}

impl<K: Hash + Eq + Clone> FailureLimiter<K> {
    fn new(per_window: u32, window: Duration) -> Result<Option<Self>, String> {
        let Some(burst) = NonZeroU32::new(per_window) else {
            return Ok(None);
        };
        let quota = Quota::with_period(window / per_window)
            .ok_or_else(|| "the login throttle window must not be zero".to_owned())?
            .allow_burst(burst);
        Ok(Some(Self {
            limiter: RateLimiter::new(
                quota,
                ProbeStore(DashMapStateStore::default()),
                DefaultClock::default(),
            ),
        }))
    }

    /// How long until `key` may fail again; `None` while it may now.
    fn wait(&self, key: &K) -> Option<Duration> {
        let probe = Probe {
            key: key.clone(),
            dry_run: true,
        };
        self.limiter
            .check_key(&probe)
            .err()
            .map(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    fn record(&self, key: &K) {
        let failure = Probe {
            key: key.clone(),
            dry_run: false,
        };
        let _ = self.limiter.check_key(&failure);
    }

    fn housekeeping(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// A key, and whether this look at its state is only a probe. Equal and
/// hashed by the key alone, so probes and failures share one state.
#[derive(Debug, Clone)]
struct Probe<K> {
    key: K,
    dry_run: bool,
}

impl<K: PartialEq> PartialEq for Probe<K> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl<K: Eq> Eq for Probe<K> {}

impl<K: Hash> Hash for Probe<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

/// `governor`'s DashMap store, answering probes without writing.
struct ProbeStore<K: Hash + Eq + Clone>(DashMapStateStore<K>);

impl<K: Hash + Eq + Clone> StateStore for ProbeStore<K> {
    type Key = Probe<K>;

    fn measure_and_replace<T, F, E>(&self, probe: &Probe<K>, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        if !probe.dry_run {
            return self.0.measure_and_replace(&probe.key, f);
        }
        let Some(state) = self.0.get(&probe.key) else {
            return f(None).map(|(t, _)| t);
        };
        // Let governor decide on the current state, then refuse to store the
        // new one: the decision is kept, the state is not touched.
        let decision = RefCell::new(None);
        let _ = state.measure_and_replace(&NotKeyed::NonKey, |tat| -> Result<((), Nanos), ()> {
            *decision.borrow_mut() = Some(f(tat));
            Err(())
        });
        match decision.into_inner() {
            Some(d) => d.map(|(t, _)| t),
            None => f(None).map(|(t, _)| t),
        }
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<Probe<K>> for ProbeStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&self.0, drop_below);
    }

    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&self.0);
    }

    fn len(&self) -> usize {
        ShrinkableKeyedStateStore::len(&self.0)
    }

    fn is_empty(&self) -> bool {
        ShrinkableKeyedStateStore::is_empty(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(user: u32, address: u32) -> LoginLimits {
        LoginLimits {
            failures_per_user: user,
            failures_per_address: address,
            window: Duration::from_secs(900),
        }
    }

    #[test]
    fn probes_never_count_and_failures_do() {
        let l = FailureLimiter::<String>::new(3, Duration::from_secs(900))
            .unwrap()
            .unwrap();
        let k = "alice".to_owned();
        for _ in 0..10 {
            assert_eq!(l.wait(&k), None, "a probe must not consume");
        }
        for _ in 0..3 {
            assert_eq!(l.wait(&k), None);
            l.record(&k);
        }
        let wait = l.wait(&k).expect("throttled after three failures");
        assert!(wait > Duration::from_secs(200) && wait <= Duration::from_secs(300));
        assert_eq!(l.wait(&"bob".to_owned()), None, "other keys are unaffected");
    }

    #[tokio::test]
    async fn wrong_passwords_throttle_the_user_and_then_the_address() {
        let a = Accounts::new(90, &limits(2, 3)).unwrap();
        let hash = auth::hash_password("right password").unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..2 {
            assert_eq!(
                a.check_password("alice", Some(ip), "wrong", Some(&hash))
                    .await
                    .ok(),
                Some(false)
            );
        }
        // The right password is not even checked while throttled.
        assert!(
            a.check_password("alice", Some(ip), "right password", Some(&hash))
                .await
                .is_err()
        );
        // Unknown users count too, against the address.
        assert_eq!(
            a.check_password("nobody", Some(ip), "x", None).await.ok(),
            Some(false)
        );
        assert!(
            a.check_password("carol", Some(ip), "right password", Some(&hash))
                .await
                .is_err()
        );
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(
            a.check_password("carol", Some(other), "right password", Some(&hash))
                .await
                .ok(),
            Some(true)
        );
        assert_eq!((a.failures_total(), a.throttled_total()), (3, 2));
    }

    #[test]
    fn throttled_rounds_retry_after_up() {
        let e = Throttled {
            retry_after: Duration::from_millis(179_001),
        }
        .into_error();
        assert_eq!((e.problem().status, e.retry_after), (429, Some(180)));
    }

    #[test]
    fn token_lifetime_is_bounded() {
        assert!(Accounts::new(0, &LoginLimits::default()).is_err());
        assert!(Accounts::new(MAX_TOKEN_DAYS + 1, &LoginLimits::default()).is_err());
        assert_eq!(
            Accounts::new(90, &LoginLimits::default())
                .unwrap()
                .token_ttl_days(),
            90
        );
    }
}

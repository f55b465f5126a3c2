//! The notifier: a worker that delivers the outbox (e-mail over SMTP with
//! `lettre`, webhooks with `reqwest`), with retries, exponential backoff with
//! jitter, a log of every attempt, and dead letters after the last attempt.
//! Rows are written by the store in the transaction of the change that causes
//! them; the worker wakes when such a transaction commits
//! (`Store::outbox_signal`) and polls besides, so rows written by another
//! replica are delivered too. Delivery is at least once: receivers drop
//! duplicates by event id.

mod email;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::notify::{self, Channel};
use gatehouse_store::Store;
use gatehouse_store::notifications::{self as store, Delivery, Outcome};

use crate::app::Secret;
use crate::clock::Clock;

pub use webhook::{WebhookPolicy, sign};

/// Default of [`NotifySettings::max_attempts`].
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// How `STARTTLS`, implicit TLS or neither secures the SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    Starttls,
    Tls,
    None,
}

impl std::str::FromStr for SmtpSecurity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "starttls" => Ok(Self::Starttls),
            "tls" => Ok(Self::Tls),
            "none" => Ok(Self::None),
            _ => Err(format!("{s:?}: use starttls, tls or none")),
        }
    }
}

/// The SMTP server e-mail goes through.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The `From:` address.
    pub from: String,
}

/// Everything about notifications the server is told at start.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Put in front of the links in messages; default `http://<bind address>`.
    pub public_url: Option<String>,
    /// `None`: e-mail is off; e-mail rows are parked as dead at once, with a
    /// clear error, and an administrator can retry them once it is on.
    pub smtp: Option<SmtpSettings>,
    /// Attempts per delivery before it is parked as dead.
    pub max_attempts: u32,
    /// First retry delay; doubled per failure up to `backoff_cap`, jittered.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// How often the worker looks for due rows without being woken.
    pub poll_interval: Duration,
    /// How long a claimed row is held by the worker that claimed it before
    /// another may try it (a worker that died while sending).
    pub lease: Duration,
    /// Hosts webhooks may call; empty: webhooks are off.
    pub webhook_allow_hosts: Vec<String>,
    /// Longest time one SMTP or webhook call may take.
    pub timeout: Duration,
    /// Days before an approval expires that its people are reminded; 0: no
    /// reminder.
    pub approval_reminder_days: u32,
    /// Days the delivery log keeps delivered notifications and their
    /// attempts; 0: forever. Pending deliveries and dead letters stay.
    pub delivery_log_days: u32,
    /// Whether this server runs the scheduler's jobs (the digest, approval
    /// expiry). Always on for `serve`; tests that move the clock past an
    /// approval's expiry to look at it turn it off.
    pub run_jobs: bool,
}

/// Default of [`NotifySettings::approval_reminder_days`].
pub const DEFAULT_REMINDER_DAYS: u32 = 14;

/// Default of [`NotifySettings::delivery_log_days`].
pub const DEFAULT_DELIVERY_LOG_DAYS: u32 = 90;

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            public_url: None,
            smtp: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff_base: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(6 * 3600),
            poll_interval: Duration::from_secs(5),
            lease: Duration::from_secs(120),
            webhook_allow_hosts: Vec::new(),
            timeout: Duration::from_secs(15),
            approval_reminder_days: DEFAULT_REMINDER_DAYS,
            delivery_log_days: DEFAULT_DELIVERY_LOG_DAYS,
            run_jobs: true,
        }
    }
}

impl NotifySettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_attempts == 0 {
            return Err("notify max attempts must be at least 1".into());
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "public URL {url:?} must start with http:// or https://"
            ));
        }
        Ok(())
    }
}

/// Delivers the outbox. One per server; cheap to share.
pub struct Notifier {
    store: Store,
    clock: Clock,
    settings: NotifySettings,
    public_url: String,
    mailer: Option<email::Mailer>,
    webhooks: WebhookPolicy,
}

impl Notifier {
    pub fn new(
        store: Store,
        clock: Clock,
        settings: NotifySettings,
        public_url: String,
    ) -> Result<Self, String> {
        let mailer = match &settings.smtp {
            Some(smtp) => Some(email::Mailer::new(smtp, settings.timeout)?),
            None => None,
        };
        let webhooks = WebhookPolicy::new(&settings.webhook_allow_hosts, settings.timeout);
        Ok(Self {
            store,
            clock,
            settings,
            public_url: public_url.trim_end_matches('/').to_owned(),
            mailer,
            webhooks,
        })
    }

    pub fn webhook_policy(&self) -> &WebhookPolicy {
        &self.webhooks
    }

    /// How often the worker (and the scheduler) look for due work.
    pub fn poll_interval(&self) -> Duration {
        self.settings.poll_interval
    }

    /// See [`NotifySettings::run_jobs`].
    pub fn runs_jobs(&self) -> bool {
        self.settings.run_jobs
    }

    /// See [`NotifySettings::approval_reminder_days`].
    pub fn approval_reminder_days(&self) -> u32 {
        self.settings.approval_reminder_days
    }

    /// See [`NotifySettings::delivery_log_days`].
    pub fn delivery_log_days(&self) -> u32 {
        self.settings.delivery_log_days
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Runs until `stop` turns true: delivers what is due, then waits for a
    /// commit that queued rows, the poll interval, or the stop.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let signal = self.store.outbox_signal();
        loop {
            if *stop.borrow() {
                break;
            }
            match self.deliver_due().await {
                // A full batch: more may be due.
                Ok(n) if n >= BATCH as usize => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "notification worker: cannot read the outbox"),
            }
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = stop.changed() => {}
            }
        }
        tracing::debug!("notification worker stopped");
    }

    /// Claims the rows due now and attempts each once; returns how many.
    pub async fn deliver_due(&self) -> Result<usize, gatehouse_store::StoreError> {
        let now = self.clock.now().as_micros();
        let lease = i64::try_from(self.settings.lease.as_micros()).unwrap_or(i64::MAX);
        let due = store::claim_due(&self.store, now, now.saturating_add(lease), BATCH).await?;
        let n = due.len();
        for d in due {
            let outcome = self.attempt(&d).await;
            let finished = self.clock.now().as_micros();
            match &outcome {
                Outcome::Delivered { .. } => {
                    tracing::info!(id = d.id, channel = %d.channel, event = %d.event_id, "notification delivered")
                }
                Outcome::Failed {
                    error, retry_at, ..
                } => tracing::warn!(
                    id = d.id, channel = %d.channel, attempt = d.attempts, %error,
                    dead = retry_at.is_none(), "notification delivery failed"
                ),
            }
            store::finish(&self.store, d.id, finished, &outcome).await?;
        }
        Ok(n)
    }

    async fn attempt(&self, d: &Delivery) -> Outcome {
        let result = match d.channel {
            Channel::Email => match &self.mailer {
                Some(m) => m.send(d, &self.public_url).await,
                None => {
                    return Outcome::Failed {
                        code: None,
                        error: "e-mail is off: no SMTP host is configured".into(),
                        retry_at: None,
                    };
                }
            },
            Channel::Webhook => self.deliver_webhook(d).await,
        };
        match result {
            Ok(code) => Outcome::Delivered { code },
            Err(Failure {
                code,
                error,
                final_,
            }) => {
                let attempts = u32::try_from(d.attempts).unwrap_or(u32::MAX);
                let retry_at = (!final_ && attempts < self.settings.max_attempts).then(|| {
                    let base = i64::try_from(self.settings.backoff_base.as_micros()).unwrap_or(0);
                    let cap = i64::try_from(self.settings.backoff_cap.as_micros()).unwrap_or(0);
                    let delay = notify::backoff_micros(base, cap, attempts, rand::random::<f64>());
                    self.clock.now().as_micros().saturating_add(delay)
                });
                Outcome::Failed {
                    code,
                    error,
                    retry_at,
                }
            }
        }
    }

    async fn deliver_webhook(&self, d: &Delivery) -> Result<Option<i64>, Failure> {
        let Some(id) = d.webhook_id else {
            return Err(Failure::final_("a webhook delivery without a webhook"));
        };
        let mut conn = self
            .store
            .conn()
            .await
            .map_err(|e| Failure::retry(format!("database: {e}")))?;
        let hook = match store::webhook(&mut conn, id).await {
            Ok(h) => h,
            Err(gatehouse_store::StoreError::NotFound(_)) => {
                return Err(Failure::final_("the webhook was removed"));
            }
            Err(e) => return Err(Failure::retry(format!("database: {e}"))),
        };
        drop(conn);
        self.webhooks
            .deliver(&hook, d, &self.public_url, self.clock.now())
            .await
    }
}

/// Rows claimed per round.
const BATCH: i64 = 32;

/// Why an attempt failed; `final_`: retrying cannot help.
#[derive(Debug)]
pub(crate) struct Failure {
    code: Option<i64>,
    error: String,
    final_: bool,
}

impl Failure {
    fn retry(error: impl Into<String>) -> Self {
        Self {
            code: None,
            error: error.into(),
            final_: false,
        }
    }

    fn final_(error: impl Into<String>) -> Self {
        Self {
            code: None,
            error: error.into(),
            final_: true,
        }
    }
}

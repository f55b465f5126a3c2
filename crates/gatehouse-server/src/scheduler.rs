//! The job scheduler: jobs that run every so often on the server's `Clock`
//! (settable in tests). A replica runs a job when it claims the job's lease
//! row (`notifications::claim_job`): on PostgreSQL one replica at a time,
//! once per interval: the daily e-mail digest, approval expiry and
//! reminders (hourly), and the daily trim of the delivery log ([`JOBS`]).

use std::sync::Arc;
use std::time::Duration;

use gatehouse_store::Store;
use gatehouse_store::notifications;

use crate::clock::Clock;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Folds the e-mails of digest users into one e-mail per address.
    EmailDigest,
    /// Resets expired approvals and reminds of the ones expiring soon.
    ApprovalExpiry,
    /// Deletes delivered notifications older than the delivery log keeps.
    DeliveryLogTrim,
}

/// A job: its name (the lease row), how often it runs, what it does.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    pub name: &'static str,
    pub every: Duration,
    pub work: Work,
}

pub const JOBS: &[Job] = &[
    Job {
        name: "email_digest",
        every: Duration::from_secs(24 * 3600),
        work: Work::EmailDigest,
    },
    Job {
        name: "approval_expiry",
        every: Duration::from_secs(3600),
        work: Work::ApprovalExpiry,
    },
    Job {
        name: "delivery_log_trim",
        every: Duration::from_secs(24 * 3600),
        work: Work::DeliveryLogTrim,
    },
];

pub struct Scheduler {
    store: Store,
    clock: Clock,
    /// How often due jobs are looked for.
    tick: Duration,
    /// Days before expiry an approval's people are reminded (0: never).
    reminder_days: u32,
    /// Days delivered notifications stay in the delivery log (0: forever).
    log_days: u32,
}

impl Scheduler {
    pub fn new(
        store: Store,
        clock: Clock,
        tick: Duration,
        reminder_days: u32,
        log_days: u32,
    ) -> Self {
        Self {
            store,
            clock,
            tick,
            reminder_days,
            log_days,
        }
    }

    /// Runs the jobs due now that this replica claims; returns their names.
    pub async fn run_due(&self) -> Vec<&'static str> {
        let mut ran = Vec::new();
        for job in JOBS {
            let now = self.clock.now().as_micros();
            let every = i64::try_from(job.every.as_micros()).unwrap_or(i64::MAX);
            match notifications::claim_job(&self.store, job.name, now, now.saturating_add(every))
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(job = job.name, error = %e, "scheduler: cannot claim a job");
                    continue;
                }
            }
            let result = match job.work {
                Work::EmailDigest => notifications::queue_digests(&self.store, self.clock.now())
                    .await
                    .map(|n| tracing::info!(digests = n, "queued the daily e-mail digests")),
                Work::ApprovalExpiry => {
                    gatehouse_store::expiry::run(&self.store, self.clock.now(), self.reminder_days)
                        .await
                        .map(|r| {
                            tracing::info!(
                                expired = r.expired,
                                tier_raised = r.tier_raised,
                                reminded = r.reminded,
                                "approval expiry"
                            )
                        })
                }
                Work::DeliveryLogTrim if self.log_days == 0 => Ok(()),
                Work::DeliveryLogTrim => {
                    let now = self.clock.now();
                    let before = now.plus_days(-i64::from(self.log_days)).as_micros();
                    notifications::trim_log(&self.store, now, before)
                        .await
                        .map(|n| tracing::info!(deleted = n, "trimmed the delivery log"))
                }
            };
            if let Err(e) = result {
                tracing::warn!(job = job.name, error = %e, "scheduled job failed");
            }
            ran.push(job.name);
        }
        ran
    }

    /// Runs until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                break;
            }
            self.run_due().await;
            tokio::select! {
                _ = tokio::time::sleep(self.tick) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

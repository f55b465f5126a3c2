//! Verification of the audit chain as a streaming state machine: fed stored
//! events one at a time in `seq` order (and the signed checkpoints), it keeps a
//! few hashes and one event of look-ahead, never the log, and reports the first
//! broken `seq` and why.
//!
//! How a break is classified, for the first event `c` at expected seq `k` that
//! does not both recompute (`hash = SHA-256(prev_hash ‖ canonical bytes)`) and
//! link (`prev_hash` = hash of `k - 1`), with `n` the event after it:
//!
//! | what is seen | reason | first bad seq |
//! |---|---|---|
//! | `c.seq > k`, `n.seq < c.seq` | reordered | k |
//! | `c.seq > k` otherwise | deleted (gap) | k |
//! | `c.seq < k` | reordered | k |
//! | `c.seq` beyond the recorded head | inserted | c.seq |
//! | `c` links to the hash of `k - 2` | inserted (the event at `k - 1`) | k − 1 |
//! | `n.hash = c.prev_hash` (c belongs after n) | reordered | k |
//! | `n` links to `k - 1`, skipping `c` | inserted | k |
//! | `c` does not recompute | edited | k |
//! | `c` recomputes but does not link | edited (k − 1 rewritten and rehashed) | k − 1 |
//! | a checkpoint's hash differs from the chain's at its seq | edited (chain rewritten) | the checkpoint's seq |
//! | a checkpoint's signature fails, or its key is unknown | bad signature | the checkpoint's seq |
//! | the log ends below a checkpoint or the recorded head | truncated | last seq + 1 |

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::audit::{EventFields, GENESIS_HASH, event_hash};
use crate::audit_key::{AuditPublicKey, Checkpoint};

/// One stored event, with the chain fields, as read back for verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainEvent {
    pub seq: i64,
    pub at_micros: i64,
    pub actor: String,
    pub action: String,
    pub project: Option<String>,
    pub subject: String,
    /// The details exactly as stored (canonical JSON text).
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl ChainEvent {
    pub fn fields(&self) -> EventFields<'_> {
        EventFields {
            seq: self.seq,
            at_micros: self.at_micros,
            actor: &self.actor,
            action: &self.action,
            project: self.project.as_deref(),
            subject: &self.subject,
            details: &self.details,
        }
    }

    /// The hash this event should carry, given its own `prev_hash`.
    pub fn recompute(&self) -> String {
        event_hash(&self.prev_hash, &self.fields())
    }
}

/// Why the chain is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tamper {
    /// An event's content or hash was changed.
    Edited,
    /// Events are missing: a gap in `seq`.
    Deleted,
    /// An event that does not belong to the chain was added.
    Inserted,
    /// Events are out of order.
    Reordered,
    /// A checkpoint's signature does not verify, or its key is unknown.
    BadSignature,
    /// The log ends below a signed checkpoint or the recorded head.
    Truncated,
}

impl Tamper {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edited => "edited",
            Self::Deleted => "deleted",
            Self::Inserted => "inserted",
            Self::Reordered => "reordered",
            Self::BadSignature => "bad_signature",
            Self::Truncated => "truncated",
        }
    }
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first break found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The first `seq` that is wrong (or missing).
    pub seq: i64,
    pub reason: Tamper,
    /// One line for people.
    pub detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}: {}: {}", self.seq, self.reason, self.detail)
    }
}

/// What a verification that found no break saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub events: u64,
    /// First verified seq (1 unless verification started later).
    pub first_seq: Option<i64>,
    /// Last verified seq and its hash (the genesis hash when there were no events).
    pub head_seq: i64,
    pub head_hash: String,
    /// Checkpoints whose signature and hash were checked.
    pub checkpoints: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ok: {} events, head {}",
            self.events,
            if self.events == 0 {
                "(empty)"
            } else {
                &self.head_hash
            }
        )
    }
}

/// Where verification starts and what it compares the end with.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Start after this `(seq, hash)` instead of the genesis: for a log that
    /// begins later (an export of a range). Taken on trust.
    pub start_after: Option<(i64, String)>,
    /// The head the store records (`audit_head`): the log must end exactly there.
    pub head: Option<(i64, String)>,
}

/// The state machine. Feed [`Verifier::checkpoint`]s and [`Verifier::event`]s;
/// a checkpoint must be fed before the event with its seq. Then
/// [`Verifier::finish`]. After the first failure every call answers it again.
#[derive(Debug)]
pub struct Verifier {
    keys: HashMap<String, AuditPublicKey>,
    head: Option<(i64, String)>,
    /// Seq the next judged event must have.
    expected: i64,
    /// Hash of the last accepted event (or the starting point).
    last_hash: String,
    /// Hash of the accepted event before that, when there is one.
    prev_hash: Option<String>,
    /// The event seen but not yet judged (one event of look-ahead).
    pending: Option<ChainEvent>,
    checkpoints: BTreeMap<i64, Checkpoint>,
    events: u64,
    first_seq: Option<i64>,
    checked: u64,
    failed: Option<Failure>,
}

impl Verifier {
    /// A verifier trusting these public keys for checkpoint signatures.
    pub fn new(keys: impl IntoIterator<Item = AuditPublicKey>, opts: VerifyOptions) -> Self {
        let (start_seq, start_hash) = opts
            .start_after
            .unwrap_or_else(|| (0, GENESIS_HASH.to_owned()));
        Self {
            keys: keys.into_iter().map(|k| (k.key_id(), k)).collect(),
            head: opts.head,
            expected: start_seq + 1,
            last_hash: start_hash,
            prev_hash: None,
            pending: None,
            checkpoints: BTreeMap::new(),
            events: 0,
            first_seq: None,
            checked: 0,
            failed: None,
        }
    }

    fn fail(&mut self, f: Failure) -> Result<(), Failure> {
        self.failed = Some(f.clone());
        Err(f)
    }

    /// Checks a checkpoint's signature now, and its hash when the chain reaches its seq.
    pub fn checkpoint(&mut self, cp: Checkpoint) -> Result<(), Failure> {
        if let Some(f) = &self.failed {
            return Err(f.clone());
        }
        let bad = |detail: String| Failure {
            seq: cp.seq,
            reason: Tamper::BadSignature,
            detail,
        };
        match self.keys.get(&cp.key_id) {
            None => {
                let f = bad(format!(
                    "the checkpoint is signed by unknown key {:?}",
                    cp.key_id
                ));
                return self.fail(f);
            }
            Some(k) if !k.verifies(&cp) => {
                let f = bad(format!(
                    "the checkpoint's signature does not verify with key {}",
                    cp.key_id
                ));
                return self.fail(f);
            }
            Some(_) => {}
        }
        if let Some(other) = self.checkpoints.get(&cp.seq)
            && other.hash != cp.hash
        {
            let f = Failure {
                seq: cp.seq,
                reason: Tamper::Edited,
                detail: "two signed checkpoints disagree about this event's hash".into(),
            };
            return self.fail(f);
        }
        self.checkpoints.insert(cp.seq, cp);
        Ok(())
    }

    /// Feeds the next stored event (in the order the store gives them).
    pub fn event(&mut self, ev: ChainEvent) -> Result<(), Failure> {
        if let Some(f) = &self.failed {
            return Err(f.clone());
        }
        if let Some(c) = self.pending.take() {
            let r = self.judge(&c, Some(&ev));
            if let Err(f) = r {
                return self.fail(f);
            }
        }
        self.pending = Some(ev);
        Ok(())
    }

    /// Judges the last event and the end of the log.
    pub fn finish(mut self) -> Result<Summary, Failure> {
        if let Some(f) = self.failed.take() {
            return Err(f);
        }
        if let Some(c) = self.pending.take() {
            self.judge(&c, None)?;
        }
        let last = self.expected - 1;
        let truncated = |detail: String| Failure {
            seq: last + 1,
            reason: Tamper::Truncated,
            detail,
        };
        if let Some((seq, _)) = &self.head
            && *seq > last
        {
            return Err(truncated(format!(
                "the log ends at seq {last} but its recorded head is seq {seq}"
            )));
        }
        if let Some((seq, cp)) = self.checkpoints.range(last + 1..).next() {
            return Err(truncated(format!(
                "the log ends at seq {last} but checkpoint {seq} (key {}) was signed over a longer log",
                cp.key_id
            )));
        }
        Ok(Summary {
            events: self.events,
            first_seq: self.first_seq,
            head_seq: last,
            head_hash: self.last_hash,
            checkpoints: self.checked,
        })
    }

    fn judge(&mut self, c: &ChainEvent, next: Option<&ChainEvent>) -> Result<(), Failure> {
        let k = self.expected;
        let failure = |seq: i64, reason: Tamper, detail: String| Failure {
            seq,
            reason,
            detail,
        };
        if c.seq < k {
            return Err(failure(
                k,
                Tamper::Reordered,
                format!("seq {} comes after seq {}", c.seq, k - 1),
            ));
        }
        if c.seq > k {
            return Err(match next {
                Some(n) if n.seq < c.seq => failure(
                    k,
                    Tamper::Reordered,
                    format!("seq {} comes before seq {}", c.seq, n.seq),
                ),
                _ if c.seq == k + 1 => failure(
                    k,
                    Tamper::Deleted,
                    format!("seq {k} is missing: seq {} follows seq {}", c.seq, k - 1),
                ),
                _ => failure(
                    k,
                    Tamper::Deleted,
                    format!(
                        "seqs {k} to {} are missing: seq {} follows seq {}",
                        c.seq - 1,
                        c.seq,
                        k - 1
                    ),
                ),
            });
        }
        if let Some((head, _)) = &self.head
            && c.seq > *head
        {
            return Err(failure(
                k,
                Tamper::Inserted,
                format!("seq {k} lies beyond the recorded head, seq {head}"),
            ));
        }
        let content_ok = c.recompute() == c.hash;
        let link_ok = c.prev_hash == self.last_hash;
        if !(content_ok && link_ok) {
            return Err(self.classify(c, next, content_ok));
        }
        if let Some(cp) = self.checkpoints.remove(&k) {
            if cp.hash != c.hash {
                return Err(failure(
                    k,
                    Tamper::Edited,
                    format!(
                        "the chain was rewritten: its hash at seq {k} differs from the checkpoint signed by {}",
                        cp.key_id
                    ),
                ));
            }
            self.checked += 1;
        }
        if let Some((head, hash)) = &self.head
            && *head == k
            && *hash != c.hash
        {
            return Err(failure(
                k,
                Tamper::Edited,
                format!("the hash at seq {k} differs from the recorded head's"),
            ));
        }
        self.prev_hash = Some(std::mem::replace(&mut self.last_hash, c.hash.clone()));
        self.expected = k + 1;
        self.events += 1;
        self.first_seq.get_or_insert(k);
        Ok(())
    }

    fn classify(&self, c: &ChainEvent, next: Option<&ChainEvent>, content_ok: bool) -> Failure {
        let k = self.expected;
        let (seq, reason, detail) = if self.prev_hash.as_deref() == Some(c.prev_hash.as_str()) {
            (
                k - 1,
                Tamper::Inserted,
                format!(
                    "seq {k} links to seq {}: seq {} does not belong to the chain",
                    k - 2,
                    k - 1
                ),
            )
        } else if next.is_some_and(|n| n.hash == c.prev_hash) {
            (
                k,
                Tamper::Reordered,
                format!("seq {k} links to the event stored as seq {}", k + 1),
            )
        } else if next.is_some_and(|n| n.prev_hash == self.last_hash) {
            (
                k,
                Tamper::Inserted,
                format!(
                    "seq {} links to seq {}: seq {k} does not belong to the chain",
                    k + 1,
                    k - 1
                ),
            )
        } else if !content_ok {
            (
                k,
                Tamper::Edited,
                "the stored hash does not match the event's content".to_owned(),
            )
        } else if k - 1 > self.expected_start() {
            (
                k - 1,
                Tamper::Edited,
                format!(
                    "seq {k} does not link to seq {}: seq {} was changed and its hash recomputed",
                    k - 1,
                    k - 1
                ),
            )
        } else {
            (
                k,
                Tamper::Edited,
                format!("seq {k} does not link to the start of the chain"),
            )
        };
        Failure {
            seq,
            reason,
            detail,
        }
    }

    /// The seq before the first one this verifier judges.
    fn expected_start(&self) -> i64 {
        self.expected - 1 - self.events as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit_key::AuditSigner;
    use proptest::prelude::*;

    /// A valid chain of `n` events.
    fn chain(n: i64) -> Vec<ChainEvent> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let mut e = ChainEvent {
                    seq,
                    at_micros: 1_000 + seq,
                    actor: "alice".into(),
                    action: "project.update".into(),
                    project: (seq % 2 == 0).then(|| "FRAUD".to_owned()),
                    subject: format!("project:P{seq}"),
                    details: format!("{{\"n\":{seq}}}"),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                e.hash = e.recompute();
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    /// Re-links and re-hashes `events` from index `from` on, as a careful forger would.
    fn rehash_from(events: &mut [ChainEvent], from: usize) {
        for i in from..events.len() {
            events[i].prev_hash = if i == 0 {
                GENESIS_HASH.to_owned()
            } else {
                events[i - 1].hash.clone()
            };
            events[i].hash = events[i].recompute();
        }
    }

    fn signer() -> AuditSigner {
        AuditSigner::from_seed([7; 32])
    }

    fn cp(events: &[ChainEvent], seq: i64) -> Checkpoint {
        let e = &events[(seq - 1) as usize];
        signer().sign(seq, &e.hash, 99)
    }

    fn run(
        events: &[ChainEvent],
        cps: &[Checkpoint],
        opts: VerifyOptions,
    ) -> Result<Summary, Failure> {
        let mut v = Verifier::new([signer().public_key()], opts);
        for c in cps {
            v.checkpoint(c.clone())?;
        }
        for e in events {
            v.event(e.clone())?;
        }
        v.finish()
    }

    fn verify(events: &[ChainEvent]) -> Result<Summary, Failure> {
        run(events, &[], VerifyOptions::default())
    }

    #[track_caller]
    fn broken(r: Result<Summary, Failure>, seq: i64, reason: Tamper) {
        let f = r.expect_err("tampering was not caught");
        assert_eq!((f.seq, f.reason), (seq, reason), "{f}");
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let events = chain(10);
        let s = run(
            &events,
            &[cp(&events, 5), cp(&events, 10)],
            VerifyOptions::default(),
        )
        .unwrap();
        assert_eq!(s.events, 10);
        assert_eq!(s.head_seq, 10);
        assert_eq!(s.head_hash, events[9].hash);
        assert_eq!(s.checkpoints, 2);
        assert_eq!(s.first_seq, Some(1));
        assert_eq!(
            s.to_string(),
            format!("ok: 10 events, head {}", events[9].hash)
        );
    }

    #[test]
    fn an_empty_log_verifies() {
        let s = verify(&[]).unwrap();
        assert_eq!(
            (s.events, s.head_seq, s.head_hash.as_str()),
            (0, 0, GENESIS_HASH)
        );
        assert_eq!(s.to_string(), "ok: 0 events, head (empty)");
    }

    #[test]
    fn an_edited_detail_is_caught_where_it_is() {
        for at in 1..=5 {
            let mut events = chain(5);
            events[at - 1].details = "{\"n\":999}".into();
            broken(verify(&events), at as i64, Tamper::Edited);
        }
    }

    #[test]
    fn every_edited_field_is_caught() {
        let edits: Vec<fn(&mut ChainEvent)> = vec![
            |e| e.at_micros += 1,
            |e| e.actor = "mallory".into(),
            |e| e.action = "project.create".into(),
            |e| e.project = None,
            |e| e.project = Some("OTHER".into()),
            |e| e.subject = "project:X".into(),
            |e| e.details = "{}".into(),
            |e| e.hash = "0".repeat(64),
        ];
        for edit in edits {
            let mut events = chain(6);
            edit(&mut events[3]);
            broken(verify(&events), 4, Tamper::Edited);
        }
    }

    #[test]
    fn an_edit_with_recomputed_hash_is_caught_at_the_edited_event() {
        let mut events = chain(6);
        events[2].details = "{\"n\":999}".into();
        events[2].hash = events[2].recompute();
        broken(verify(&events), 3, Tamper::Edited);
    }

    #[test]
    fn a_rewritten_chain_is_caught_by_the_checkpoint() {
        let events = chain(8);
        let cps = [cp(&events, 4), cp(&events, 8)];
        let mut forged = events.clone();
        forged[2].details = "{\"n\":999}".into();
        rehash_from(&mut forged, 2);
        // Without checkpoints the rewrite is undetectable…
        assert!(verify(&forged).is_ok());
        // …with them it is caught at the first checkpoint above the edit.
        broken(
            run(&forged, &cps, VerifyOptions::default()),
            4,
            Tamper::Edited,
        );
    }

    #[test]
    fn a_deleted_event_is_a_gap() {
        for at in [1usize, 3, 5] {
            let mut events = chain(6);
            events.remove(at - 1);
            broken(verify(&events), at as i64, Tamper::Deleted);
        }
        let mut events = chain(9);
        events.drain(3..6);
        let f = verify(&events).unwrap_err();
        assert_eq!((f.seq, f.reason), (4, Tamper::Deleted));
        assert!(f.detail.contains("4 to 6"), "{f}");
    }

    #[test]
    fn a_deleted_event_with_renumbering_is_caught() {
        // Delete seq 3, move every later event down by one.
        let mut events = chain(6);
        events.remove(2);
        for e in &mut events[2..] {
            e.seq -= 1;
        }
        let f = verify(&events).unwrap_err();
        assert_eq!(f.seq, 3, "{f}");
    }

    #[test]
    fn an_inserted_well_formed_event_is_named() {
        // The forger moves seq 4.. up by one and puts a valid-looking event at 4.
        let events = chain(6);
        let mut forged: Vec<ChainEvent> = events[..3].to_vec();
        let mut fake = events[3].clone();
        fake.actor = "mallory".into();
        fake.prev_hash = events[2].hash.clone();
        fake.hash = fake.recompute();
        forged.push(fake);
        for e in &events[3..] {
            forged.push(ChainEvent {
                seq: e.seq + 1,
                ..e.clone()
            });
        }
        broken(verify(&forged), 4, Tamper::Inserted);
    }

    #[test]
    fn an_inserted_garbage_event_is_named() {
        let events = chain(6);
        let mut forged: Vec<ChainEvent> = events[..3].to_vec();
        forged.push(ChainEvent {
            actor: "mallory".into(),
            prev_hash: "f".repeat(64),
            hash: "e".repeat(64),
            ..events[3].clone()
        });
        for e in &events[3..] {
            forged.push(ChainEvent {
                seq: e.seq + 1,
                ..e.clone()
            });
        }
        broken(verify(&forged), 4, Tamper::Inserted);
    }

    #[test]
    fn an_event_beyond_the_recorded_head_is_inserted() {
        let events = chain(5);
        let mut forged = events.clone();
        let mut extra = events[4].clone();
        extra.seq = 6;
        extra.prev_hash = events[4].hash.clone();
        extra.hash = extra.recompute();
        forged.push(extra);
        let head = VerifyOptions {
            head: Some((5, events[4].hash.clone())),
            ..Default::default()
        };
        broken(run(&forged, &[], head.clone()), 6, Tamper::Inserted);
        assert!(run(&events, &[], head).is_ok());
    }

    #[test]
    fn swapped_neighbours_are_reordered() {
        for at in [0usize, 2, 4] {
            // Swap the seq numbers of two stored rows: read in seq order, their
            // contents trade places.
            let mut events = chain(6);
            events.swap(at, at + 1);
            events[at].seq = at as i64 + 1;
            events[at + 1].seq = at as i64 + 2;
            broken(verify(&events), at as i64 + 1, Tamper::Reordered);
        }
    }

    #[test]
    fn out_of_order_lines_are_reordered() {
        // An export file whose lines were moved: seqs arrive out of order.
        let mut events = chain(6);
        events.swap(2, 3);
        broken(verify(&events), 3, Tamper::Reordered);
        let mut events = chain(6);
        let dup = events[2].clone();
        events.insert(3, dup);
        broken(verify(&events), 4, Tamper::Reordered);
    }

    #[test]
    fn distant_swaps_are_caught_at_the_first_moved_seq() {
        let mut events = chain(8);
        events.swap(1, 5);
        events[1].seq = 2;
        events[5].seq = 6;
        let f = verify(&events).unwrap_err();
        assert_eq!(f.seq, 2, "{f}");
    }

    #[test]
    fn bad_signatures_are_caught() {
        let events = chain(4);
        let mut c = cp(&events, 2);
        c.signature = signer().sign(3, &events[2].hash, 99).signature;
        broken(
            run(&events, &[c], VerifyOptions::default()),
            2,
            Tamper::BadSignature,
        );

        let other = AuditSigner::from_seed([9; 32]).sign(2, &events[1].hash, 99);
        let f = run(&events, &[other], VerifyOptions::default()).unwrap_err();
        assert_eq!((f.seq, f.reason), (2, Tamper::BadSignature));
        assert!(f.detail.contains("unknown key"), "{f}");

        let mut garbled = cp(&events, 2);
        garbled.signature = "not hex".into();
        broken(
            run(&events, &[garbled], VerifyOptions::default()),
            2,
            Tamper::BadSignature,
        );
    }

    #[test]
    fn a_rotated_key_still_verifies_old_checkpoints() {
        let events = chain(4);
        let old = AuditSigner::from_seed([1; 32]);
        let new = AuditSigner::from_seed([2; 32]);
        let mut v = Verifier::new(
            [old.public_key(), new.public_key()],
            VerifyOptions::default(),
        );
        v.checkpoint(old.sign(2, &events[1].hash, 5)).unwrap();
        v.checkpoint(new.sign(4, &events[3].hash, 6)).unwrap();
        for e in &events {
            v.event(e.clone()).unwrap();
        }
        assert_eq!(v.finish().unwrap().checkpoints, 2);
    }

    #[test]
    fn conflicting_checkpoints_are_caught() {
        let events = chain(4);
        let s = signer();
        let a = s.sign(2, &events[1].hash, 5);
        let b = s.sign(2, &events[2].hash, 6);
        broken(
            run(&events, &[a, b], VerifyOptions::default()),
            2,
            Tamper::Edited,
        );
    }

    #[test]
    fn truncation_below_a_checkpoint_is_caught() {
        let events = chain(10);
        let cps = [cp(&events, 5), cp(&events, 8)];
        broken(
            run(&events[..7], &cps, VerifyOptions::default()),
            8,
            Tamper::Truncated,
        );
        broken(
            run(&events[..0], &cps, VerifyOptions::default()),
            1,
            Tamper::Truncated,
        );
        // Cutting only above the last checkpoint is invisible without the head…
        assert!(run(&events[..9], &cps, VerifyOptions::default()).is_ok());
        // …and caught with it.
        let head = VerifyOptions {
            head: Some((10, events[9].hash.clone())),
            ..Default::default()
        };
        broken(run(&events[..9], &cps, head), 10, Tamper::Truncated);
    }

    #[test]
    fn the_recorded_head_must_match() {
        let events = chain(3);
        let head = VerifyOptions {
            head: Some((3, "a".repeat(64))),
            ..Default::default()
        };
        broken(run(&events, &[], head), 3, Tamper::Edited);
    }

    #[test]
    fn verification_can_start_later() {
        let events = chain(10);
        let opts = VerifyOptions {
            start_after: Some((4, events[3].hash.clone())),
            ..Default::default()
        };
        let s = run(&events[4..], &[cp(&events, 6)], opts.clone()).unwrap();
        assert_eq!((s.events, s.first_seq, s.head_seq), (6, Some(5), 10));
        let mut bad = events[4..].to_vec();
        bad[0].prev_hash = "1".repeat(64);
        bad[0].hash = bad[0].recompute();
        broken(run(&bad, &[], opts), 5, Tamper::Edited);
    }

    #[test]
    fn a_wrong_first_link_is_edited_at_one() {
        let mut events = chain(3);
        events[0].prev_hash = "1".repeat(64);
        events[0].hash = events[0].recompute();
        broken(verify(&events), 1, Tamper::Edited);
    }

    #[test]
    fn the_first_failure_sticks() {
        let mut events = chain(5);
        events[1].details = "{}".into();
        let mut v = Verifier::new([], VerifyOptions::default());
        v.event(events[0].clone()).unwrap();
        v.event(events[1].clone()).unwrap();
        let f = v.event(events[2].clone()).unwrap_err();
        assert_eq!(v.event(events[3].clone()).unwrap_err(), f);
        assert_eq!(v.checkpoint(cp(&events, 5)).unwrap_err(), f);
        assert_eq!(v.finish().unwrap_err(), f);
    }

    proptest! {
        /// Any single change to any stored field of any event is caught, at that
        /// event or (for a rehashed edit) at most one before the next checkpoint.
        #[test]
        fn any_single_edit_is_caught(n in 2i64..30, at in 0usize..30, field in 0u8..8, rehash in any::<bool>()) {
            let at = at % n as usize;
            let events = chain(n);
            let mut forged = events.clone();
            let e = &mut forged[at];
            match field {
                0 => e.at_micros += 7,
                1 => e.actor.push('x'),
                2 => e.action.push('x'),
                3 => e.project = Some("ZZ".into()),
                4 => e.subject.push('x'),
                5 => e.details = "{\"tampered\":true}".into(),
                6 => e.prev_hash = "3".repeat(64),
                _ => e.hash = "4".repeat(64),
            }
            // Recomputing a replaced hash restores the original: no change.
            prop_assume!(!(rehash && field == 7));
            if rehash {
                e.hash = e.recompute();
            }
            let seq = at as i64 + 1;
            if rehash && seq == n && field != 6 {
                // Rewriting the newest event with its hash is only caught by a
                // checkpoint or the head.
                prop_assert!(verify(&forged).is_ok());
                let head = VerifyOptions { head: Some((n, events[at].hash.clone())), ..Default::default() };
                let f = run(&forged, &[], head).unwrap_err();
                prop_assert_eq!((f.seq, f.reason), (n, Tamper::Edited));
            } else {
                let f = verify(&forged).unwrap_err();
                // A relinked, rehashed event is blamed on its predecessor.
                let ok = f.seq == seq || (rehash && field == 6 && f.seq == seq - 1);
                prop_assert!(ok, "edit of field {} at seq {}: {}", field, seq, f);
                prop_assert_eq!(f.reason, Tamper::Edited);
            }
        }

        /// Deleting any one event is a gap at its seq (or a truncation at the end).
        #[test]
        fn any_deletion_is_caught(n in 2i64..30, at in 0usize..30) {
            let at = at % n as usize;
            let events = chain(n);
            let mut forged = events.clone();
            forged.remove(at);
            let head = VerifyOptions { head: Some((n, events[n as usize - 1].hash.clone())), ..Default::default() };
            let f = run(&forged, &[], head).unwrap_err();
            prop_assert_eq!(f.seq, at as i64 + 1);
            let expected = if at + 1 == n as usize { Tamper::Truncated } else { Tamper::Deleted };
            prop_assert_eq!(f.reason, expected);
        }
    }
}

//! Keeping the pending heads between rounds. Over a deep backlog that does not move (a tenth
//! of a nightly wave fits; the rest waits for hours) every round read the same thousands of
//! heads again, and that read was half of the round. The migration `pending_notify` makes
//! every committed change to what the heads show send one `NOTIFY`; while the leader listens
//! ([`JobStore::watch_pending`]), a round whose heads heard nothing since they were read takes
//! them from memory.
//!
//! Why this is safe: the number of changes heard is taken *before* the heads are read, and a
//! change committed after the read's snapshot is notified after its commit, so it is heard
//! after that number was taken and the next round reads again. Heads are never reused while
//! nobody listens (notifications are lost then), nor while the listening connection has not
//! answered its heartbeat within [`ANSWERED_WITHIN`] (a connection that died silently hears
//! nothing and says nothing), nor once they are [`KEPT_AT_MOST`] old, a last bound on what
//! anything else could hide. A reused head that is no longer what the store holds costs what
//! a change racing any round costs: the admission's record checks the state and attempt it
//! saw, and a conflict is handled as before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{JobStore, PendingJob};
use crate::error::Result;
use jobs::model::{Job, JobId};

/// Heads older than this are read again even when nothing was heard. Not the guard against a
/// dead connection (the heartbeat is, see [`ANSWERED_WITHIN`]): when it was (5 s), a quiet
/// backlog of 9,000 heads was read again every 5 s, and those reads were the round bench's
/// slow rounds.
pub const KEPT_AT_MOST: Duration = Duration::from_secs(60);

/// Heads are reused only while the listening connection answered a heartbeat this recently:
/// three of [`HEARTBEAT`](super::wake::HEARTBEAT)s, so one slow answer does not count as dead.
pub const ANSWERED_WITHIN: Duration = Duration::from_secs(3);

/// What the pending-changes listener heard, and the heads the last read returned.
#[derive(Debug, Default)]
pub struct HeadsCache {
    /// Changes heard (notifications, and every (re)start of listening, which may have missed
    /// some).
    heard: AtomicU64,
    /// When the listening connection last answered (listening started, or a heartbeat came
    /// back); `None` while nobody listens.
    answered: Mutex<Option<Instant>>,
    kept: Mutex<Option<Kept>>,
}

#[derive(Debug)]
struct Kept {
    heard: u64,
    at: Instant,
    per_queue: u32,
    heads: Arc<Vec<PendingJob>>,
}

/// Where a round's heads came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Heads {
    /// The heads, as [`JobStore::pending_heads`] returns them.
    pub heads: Arc<Vec<PendingJob>>,
    /// Whether they were kept from an earlier read rather than read now.
    pub kept: bool,
}

/// Whether heads read when `kept_heard` changes had been heard, `age` ago, `kept_per_queue`
/// per queue, may stand for a read now; `answered` is how long ago the listening connection
/// last answered (`None`: nobody listens).
pub fn reusable(
    kept_heard: u64,
    age: Duration,
    kept_per_queue: u32,
    heard: u64,
    answered: Option<Duration>,
    per_queue: u32,
) -> bool {
    answered.is_some_and(|a| a < ANSWERED_WITHIN)
        && kept_heard == heard
        && age < KEPT_AT_MOST
        && kept_per_queue == per_queue
}

impl HeadsCache {
    /// Counts a change heard (a notification, or listening (re)started).
    pub fn heard(&self) {
        self.heard.fetch_add(1, Ordering::AcqRel);
    }

    /// Records whether a listener is listening; either way something may have been missed.
    pub fn set_listening(&self, listening: bool) {
        *self.lock_answered() = listening.then(Instant::now);
        self.heard();
    }

    /// Records that the listening connection answered a heartbeat (ignored while nobody
    /// listens: a late answer must not revive a listener that stopped).
    pub fn answered(&self) {
        if let Some(at) = self.lock_answered().as_mut() {
            *at = Instant::now();
        }
    }

    /// How long ago the listening connection last answered; `None` while nobody listens.
    pub fn since_answered(&self) -> Option<Duration> {
        self.lock_answered().map(|at| at.elapsed())
    }

    fn lock_answered(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.answered.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many changes were heard so far.
    pub fn changes_heard(&self) -> u64 {
        self.heard.load(Ordering::Acquire)
    }

    /// Whether a listener is listening.
    pub fn listening(&self) -> bool {
        self.lock_answered().is_some()
    }

    fn kept(&self, per_queue: u32) -> Option<Arc<Vec<PendingJob>>> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let k = kept.as_ref()?;
        reusable(
            k.heard,
            k.at.elapsed(),
            k.per_queue,
            self.heard.load(Ordering::Acquire),
            self.since_answered(),
            per_queue,
        )
        .then(|| k.heads.clone())
    }
}

impl JobStore {
    /// [`JobStore::pending_heads_reusing`], or the heads `cache` kept from the last read when
    /// nothing that changes them was heard since (see the module docs). `known` is only
    /// called when the heads are read.
    pub async fn pending_heads_cached(
        &self,
        per_queue: u32,
        cache: &HeadsCache,
        known: impl FnOnce() -> HashMap<(JobId, u32), Arc<Job>>,
    ) -> Result<Heads> {
        if let Some(heads) = cache.kept(per_queue) {
            return Ok(Heads { heads, kept: true });
        }
        let heard = cache.changes_heard();
        let heads = Arc::new(self.pending_heads_reusing(per_queue, &known()).await?);
        *cache.kept.lock().unwrap_or_else(PoisonError::into_inner) = Some(Kept {
            heard,
            at: Instant::now(),
            per_queue,
            heads: heads.clone(),
        });
        Ok(Heads { heads, kept: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kept heard, age, kept per queue, heard, answered ago, per queue → reusable.
    type Case = (u64, Duration, u32, u64, Option<Duration>, u32, bool);

    #[test]
    fn heads_are_reused_only_while_listening_and_answering_nothing_heard_young_and_alike() {
        let young = Duration::from_millis(10);
        let now = Some(Duration::from_millis(200));
        #[rustfmt::skip]
        let cases: [Case; 10] = [
            (3, young, 10, 3, now, 10, true),
            (3, young, 10, 4, now, 10, false),  // a change heard since
            (3, young, 10, 3, None, 10, false), // nobody listening
            (3, young, 10, 3, Some(ANSWERED_WITHIN), 10, false), // no heartbeat answered lately
            (3, young, 10, 3, Some(ANSWERED_WITHIN - Duration::from_millis(1)), 10, true),
            (3, KEPT_AT_MOST, 10, 3, now, 10, false), // too old
            (3, KEPT_AT_MOST - Duration::from_millis(1), 10, 3, now, 10, true),
            (3, Duration::from_secs(10), 10, 3, now, 10, true), // quiet and answering: kept
            (3, young, 10, 3, now, 20, false), // more heads per queue asked for
            (0, Duration::ZERO, 1, 0, Some(Duration::ZERO), 1, true),
        ];
        for (kept, age, kept_per_queue, heard, answered, per_queue, expected) in cases {
            assert_eq!(
                reusable(kept, age, kept_per_queue, heard, answered, per_queue),
                expected,
                "{kept} {age:?} {kept_per_queue} {heard} {answered:?} {per_queue}"
            );
        }
    }

    #[test]
    fn listening_starting_or_stopping_counts_as_heard() {
        let cache = HeadsCache::default();
        cache.set_listening(true);
        assert!(cache.listening());
        assert_eq!(cache.changes_heard(), 1);
        cache.set_listening(false);
        assert!(!cache.listening());
        assert_eq!(cache.changes_heard(), 2);
    }

    #[test]
    fn a_heartbeat_answer_counts_only_while_listening() {
        let cache = HeadsCache::default();
        let at = |c: &HeadsCache| *c.lock_answered();
        cache.answered();
        assert_eq!(at(&cache), None, "a late answer revives nothing");
        cache.set_listening(true);
        let started = at(&cache).unwrap();
        std::thread::sleep(Duration::from_millis(1));
        cache.answered();
        assert!(
            at(&cache).unwrap() > started,
            "the answer moved the time on"
        );
        assert_eq!(cache.changes_heard(), 1, "an answer is not a change");
        cache.set_listening(false);
        assert_eq!(cache.since_answered(), None);
    }
}

//! Admissions decided by a round that has not finished them yet: confirmed (their room
//! reserved), their application being created or their record being written.
//!
//! Rounds decide one at a time, but a round whose jobs all fit lets the next one decide while
//! its creates finish ([`crate::admission::round`]). Until they are recorded, its jobs are
//! still `queued` in the store and among the next round's heads: that round must leave them
//! alone (not release their reservations, not admit them a second time) and count their
//! footprint in their namespace's usage, as it would once they are recorded.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use capacity::Resources;
use jobs::JobId;

/// The jobs of rounds still admitting, with their namespace and footprint.
#[derive(Debug, Default)]
pub struct InFlight {
    jobs: Mutex<HashMap<JobId, (String, Resources)>>,
}

impl InFlight {
    /// The jobs in flight now. A round takes this before it reads its heads: a job recorded
    /// after that may still show among them, and must still be left alone.
    pub fn snapshot(&self) -> HashMap<JobId, (String, Resources)> {
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Marks `jobs` in flight until the returned guard is dropped — however the round ends.
    pub fn enter(&self, jobs: impl IntoIterator<Item = (JobId, String, Resources)>) -> Flight<'_> {
        let mut map = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let ids = jobs
            .into_iter()
            .map(|(id, namespace, total)| {
                map.insert(id, (namespace, total));
                id
            })
            .collect();
        Flight { set: self, ids }
    }
}

/// Jobs marked in flight by [`InFlight::enter`]; unmarked on drop.
#[must_use = "the jobs are in flight only while the guard lives"]
pub struct Flight<'a> {
    set: &'a InFlight,
    ids: Vec<JobId>,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut map = self.set.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        for id in &self.ids {
            map.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(cpu_millis: u64) -> Resources {
        Resources {
            cpu_millis,
            memory_bytes: 0,
            pods: 1,
        }
    }

    #[test]
    fn jobs_are_in_flight_while_their_guard_lives_and_only_theirs() {
        let set = InFlight::default();
        let (a, b) = (JobId::generate(), JobId::generate());
        let first = set.enter([(a, "team-a".to_owned(), r(100))]);
        let second = set.enter([(b, "team-b".to_owned(), r(200))]);
        let now = set.snapshot();
        assert_eq!(now.get(&a), Some(&("team-a".to_owned(), r(100))));
        assert_eq!(now.get(&b), Some(&("team-b".to_owned(), r(200))));
        drop(first);
        let now = set.snapshot();
        assert!(!now.contains_key(&a));
        assert!(now.contains_key(&b), "another round's jobs stay in flight");
        drop(second);
        assert!(set.snapshot().is_empty());
    }
}

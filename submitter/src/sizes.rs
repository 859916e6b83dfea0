//! Footprints and gang demands of pending jobs, kept across admission rounds: a backlog of
//! thousands is sized once, not on every round (the profile of a round over 10,000 pending
//! jobs had sizing, and dropping what it built, at a third of the round).
//!
//! A job's size depends on its spec (fixed per attempt: a retry that raises memory is a new
//! attempt), the catalog (fixed for the process) and the PriorityClass values, so entries are
//! keyed by (job, attempt) and all dropped when the values change. The jobs themselves are
//! kept too, so that the next round's read of the heads skips their specs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use capacity::GangDemand;
use jobs::{Catalog, Job, JobId};
use queues::store::PendingJob;

use crate::footprint::{Footprint, FootprintError};
use crate::naming;
use crate::room::ShapeId;

/// A pending job, its footprint and the gang demand it makes.
#[derive(Debug, Clone)]
pub struct Size {
    /// The job as stored (its spec is not read again while it stays pending).
    pub job: Arc<Job>,
    /// What its pods request.
    pub footprint: Arc<Footprint>,
    /// The demand the capacity checker and the ordering see.
    pub gang: Arc<GangDemand>,
    /// `gang`'s interned shape.
    pub shape: ShapeId,
}

/// Sizes by (job, attempt).
#[derive(Debug, Default)]
pub struct Sizes {
    priorities: BTreeMap<String, i32>,
    by_job: HashMap<(JobId, u32), Size>,
}

impl Sizes {
    /// Sizes every job of `pending` (from the cache where it can) and forgets jobs no longer
    /// pending.
    pub fn of_all(
        &mut self,
        pending: &[PendingJob],
        catalog: &Catalog,
        priorities: &BTreeMap<String, i32>,
    ) -> Vec<Result<Size, FootprintError>> {
        if self.priorities != *priorities {
            self.by_job.clear();
            self.priorities = priorities.clone();
        }
        let keys: HashSet<(JobId, u32)> = pending.iter().map(|p| (p.job.id, p.attempt)).collect();
        self.by_job.retain(|k, _| keys.contains(k));
        pending
            .iter()
            .map(|p| {
                if let Some(size) = self.by_job.get(&(p.job.id, p.attempt)) {
                    return Ok(size.clone());
                }
                let footprint = Footprint::of(&p.job, catalog)?;
                let gang = footprint.gang(
                    naming::demand_key(&p.job, p.attempt),
                    &p.job.namespace,
                    naming::pod_selector(&p.job, p.attempt),
                    priorities,
                );
                let size = Size {
                    job: p.job.clone(),
                    footprint: Arc::new(footprint),
                    shape: ShapeId::of(&gang),
                    gang: Arc::new(gang),
                };
                self.by_job.insert((p.job.id, p.attempt), size.clone());
                Ok(size)
            })
            .collect()
    }

    /// The remembered jobs, for [`queues::JobStore::pending_heads_reusing`].
    pub fn known_jobs(&self) -> HashMap<(JobId, u32), Arc<Job>> {
        self.by_job
            .iter()
            .map(|(key, size)| (*key, size.job.clone()))
            .collect()
    }

    /// Jobs sized and remembered.
    pub fn len(&self) -> usize {
        self.by_job.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_job.is_empty()
    }
}

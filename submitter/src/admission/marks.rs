//! A round's waiting jobs: their marks in the store and the waiting gauges.

use std::collections::HashMap;

use jobs::JobId;
use queues::store::{PendingJob, WaitingMark};

use super::SizedJob;
use crate::Result;
use crate::context::Context;

/// Notes that `s` waits for `code`: `message`, at `position`.
pub(super) fn wait(
    marks: &mut Vec<WaitingMark>,
    s: &SizedJob<'_>,
    code: &str,
    message: String,
    position: u64,
) {
    marks.push(WaitingMark {
        job: s.pending.job.id,
        code: code.into(),
        message,
        position: Some(position),
    });
}

/// Sets the waiting gauges to `marks`.
pub(super) fn show_waiting(
    ctx: &Context,
    sized: &HashMap<JobId, SizedJob<'_>>,
    marks: &[WaitingMark],
) {
    ctx.metrics.set_waiting(marks.iter().filter_map(|m| {
        let job = &sized.get(&m.job)?.pending.job;
        Some((job.namespace.as_str(), job.priority, m.code.as_str()))
    }));
}

/// Writes `marks`, less those the store already shows: it keeps a waiting job's row as it is
/// when its reason and message are unchanged, and leaving those out spares a deep backlog's
/// round most of its write.
pub(super) async fn write_marks(
    ctx: &Context,
    sized: &HashMap<JobId, SizedJob<'_>>,
    marks: &[WaitingMark],
) -> Result<()> {
    let changed: Vec<WaitingMark> = marks
        .iter()
        .filter(|m| {
            sized
                .get(&m.job)
                .is_none_or(|s| !already_marked(s.pending, &m.code, &m.message))
        })
        .cloned()
        .collect();
    ctx.store.mark_waiting(&changed).await?;
    Ok(())
}

/// Whether the store shows `p` waiting for exactly this reason already (what
/// [`queues::JobStore::mark_waiting`] would leave unchanged).
fn already_marked(p: &PendingJob, code: &str, message: &str) -> bool {
    p.state == jobs::JobState::Waiting
        && p.waiting
            .as_ref()
            .is_some_and(|w| w.code == code && w.message == message)
}

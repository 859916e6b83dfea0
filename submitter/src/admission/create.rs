//! One admission's own steps: its capacity confirmation (reserved at once, so the next one sees
//! it), then the create (or adoption) of its `SparkApplication` and what to record. The round
//! ([`super::round`]) runs these in decided order and records the outcomes in batches.

use capacity::{NeverKind, Verdict};
use jobs::DeadReason;
use queues::store::{FootprintRecord, Note, Submission, Submitted};

use super::{Admission, SizedJob};
use crate::context::Context;
use crate::kube_apps::{Created, SubmitError, create_or_adopt};
use crate::metrics::OutcomeLabels;
use crate::spark_app::{pin, spark_application};
use crate::{Error, Result, naming};

/// Confirms and creates one admission.
pub(super) async fn admit(ctx: &Context, s: &SizedJob<'_>) -> Result<Admission> {
    create(ctx, s, confirm(ctx, s).await).await
}

/// The strategy's own confirmation (dry-run admission, placeholders bound) on the live view;
/// a fit is reserved at once, before the next confirmation.
pub(super) async fn confirm(ctx: &Context, s: &SizedJob<'_>) -> Result<Verdict> {
    let verdict = ctx.checker.check(&s.gang).await?;
    if let Verdict::Fits(placement) = &verdict {
        ctx.checker.reserve(&s.gang, placement);
    }
    Ok(verdict)
}

/// [`create`], tagged with the admission's index.
pub(super) async fn create_at(
    ctx: &Context,
    i: usize,
    s: &SizedJob<'_>,
    verdict: Result<Verdict>,
) -> (usize, Result<Admission>) {
    (i, create(ctx, s, verdict).await)
}

/// Creates (or adopts) the application of a confirmed admission; a wait or never verdict
/// ends here.
async fn create(ctx: &Context, s: &SizedJob<'_>, verdict: Result<Verdict>) -> Result<Admission> {
    let p = &s.pending;
    let job = &p.job;
    let labels = || OutcomeLabels {
        namespace: job.namespace.clone(),
        priority: job.priority.as_str().into(),
        outcome: String::new(),
    };
    let count = |outcome: &str| {
        ctx.metrics
            .admissions
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
                ..labels()
            })
            .inc()
    };

    let placement = match verdict? {
        Verdict::Fits(placement) => placement,
        Verdict::Wait(w) => return Ok(Admission::Wait(w.kind.code().into(), w.message)),
        Verdict::Never(n) => {
            let dead = if matches!(n.kind, NeverKind::Invalid { .. }) {
                DeadReason::Invalid
            } else {
                DeadReason::NeverFits
            };
            ctx.store
                .dead_letter(job.id, p.state, dead, &n.message)
                .await?;
            return Ok(Admission::Dead);
        }
    };

    let mut rendered = spark_application(job, &s.footprint, p.attempt, &ctx.emit_settings());
    if ctx.checker.binding_placements() {
        pin(&mut rendered, &placement);
    }
    let created = match create_or_adopt(&ctx.client, &job.namespace, &rendered).await {
        Ok(c) => c,
        Err(SubmitError::Refused(message)) => {
            ctx.checker.release(&s.gang.key);
            count("refused");
            return Ok(Admission::Wait(
                "refused".into(),
                format!("Kubernetes refused the application for now: {message}"),
            ));
        }
        Err(SubmitError::Invalid(message)) => {
            ctx.checker.release(&s.gang.key);
            count("invalid");
            ctx.store
                .dead_letter(
                    job.id,
                    p.state,
                    DeadReason::Invalid,
                    &format!("Kubernetes refused the application: {message}"),
                )
                .await?;
            return Ok(Admission::Dead);
        }
        Err(SubmitError::NameTaken(message)) => {
            ctx.checker.release(&s.gang.key);
            count("invalid");
            ctx.store
                .dead_letter(job.id, p.state, DeadReason::Rejected, &message)
                .await?;
            return Ok(Admission::Dead);
        }
        Err(SubmitError::Transient(e)) => {
            ctx.checker.release(&s.gang.key);
            count("error");
            return Err(Error::Kube(e));
        }
    };
    count(match created {
        Created::Created => "created",
        Created::Adopted => "adopted",
    });

    let total = s.footprint.total();
    let submission = Submission {
        spark_app_name: naming::app_name(job, p.attempt),
        attempt: p.attempt,
        footprint: FootprintRecord {
            cpu: jobs::quantity::CpuMillis(total.cpu_millis),
            memory: jobs::quantity::MemoryBytes(total.memory_bytes),
        },
    };
    let nodes = placement
        .nodes
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mut message = format!(
        "admitted: driver and {} executor(s) placed on {nodes} node(s)",
        s.footprint.executors
    );
    if !placement.scale_up.is_empty() {
        let adds: Vec<String> = placement
            .scale_up
            .iter()
            .map(|u| format!("{} node(s) in pool {}", u.nodes, u.pool))
            .collect();
        message.push_str(&format!(", relying on scale-up of {}", adds.join(", ")));
    }
    let note = Note::new(if created == Created::Adopted { "adopted" } else { "admitted" }, message)
        .with_details(serde_json::json!({ "placement": placement.nodes, "sparkApplication": submission.spark_app_name }));
    Ok(Admission::Created(Box::new(Submitted {
        job: job.id,
        from: p.state,
        submission,
        note,
    })))
}

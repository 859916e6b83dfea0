//! Why a gang did not pack: the first pod that found no node, the scarcest resource and by
//! how much — turned into the machine-readable [`WaitKind::Insufficient`] and the sentence a
//! user reads ("executor 3 of 4 does not fit: needs 7.2Gi memory, at most 6Gi free on any
//! node with pool=spot").

use crate::fit::{fmt_amount, get, role_name, too_large};
use crate::model::{PodRole, Resources};
use crate::quantity::{fmt_cpu, fmt_memory};
use crate::verdict::{Resource, WaitKind, WaitReason};

/// The pod that did not fit and what it met.
#[derive(Debug, Clone, PartialEq)]
pub struct Shortfall {
    /// Index of the pod in the gang.
    pub pod: usize,
    /// Its role.
    pub role: PodRole,
    /// Its place among the gang's pods of that role (1-based) …
    pub ordinal: usize,
    /// … out of this many.
    pub of: usize,
    /// Its requests.
    pub need: Resources,
    /// Per resource, the most free on any node it may use (not necessarily the same node).
    pub best_free: Resources,
    /// Summed over the nodes it may use: more than `need` means fragmentation.
    pub total_free: Resources,
    /// The node nearest to fitting it and that node's free capacity.
    pub closest: Option<(String, Resources)>,
    /// Nodes it may use now (selector, taints, not cordoned), new pool nodes included.
    pub candidates: usize,
    /// Pods of the gang placed before this one failed.
    pub placed: usize,
    /// Pods in the gang.
    pub gang_size: usize,
    /// The pool all its candidate nodes belong to, when there is one.
    pub pool: Option<String>,
    /// `with pool=spot` / `in the cluster`: where it may go, for the message.
    pub place: String,
}

impl Shortfall {
    /// The scarcest resource and the amounts it is short (only short dimensions non-zero).
    pub fn scarcest(&self) -> (Resource, Resources) {
        if self.candidates == 0 {
            return (
                Resource::Pods,
                Resources {
                    pods: self.need.pods.max(1),
                    ..Resources::default()
                },
            );
        }
        if let Some(resource) = too_large(&self.need, &self.best_free) {
            return (resource, self.need.saturating_sub(&self.best_free));
        }
        // Every resource is free somewhere, never all on one node: report the closest node's gap.
        let free = self.closest.as_ref().map(|(_, f)| *f).unwrap_or_default();
        let short = self.need.saturating_sub(&free);
        let resource = too_large(&self.need, &free).unwrap_or(Resource::Memory);
        (resource, short)
    }

    /// `executor 3 of 4` / `driver`.
    fn who(&self) -> String {
        let role = role_name(self.role);
        if self.of > 1 {
            format!("{role} {} of {}", self.ordinal, self.of)
        } else {
            role.to_string()
        }
    }

    /// The "why pending" sentence.
    pub fn message(&self) -> String {
        let who = self.who();
        let place = &self.place;
        if self.candidates == 0 {
            return format!("{who} does not fit: every node {place} it tolerates is cordoned");
        }
        let (resource, _) = self.scarcest();
        let mut msg = if too_large(&self.need, &self.best_free).is_some() {
            let need = get(&self.need, resource);
            let free = get(&self.best_free, resource);
            if resource == Resource::Pods {
                format!("{who} does not fit: no pod slot free on any node {place}")
            } else {
                format!(
                    "{who} does not fit: needs {} {}, at most {} free on any node {place}",
                    fmt_amount(resource, need),
                    resource.as_str(),
                    fmt_amount(resource, free),
                )
            }
        } else {
            let (name, free) = self.closest.clone().unwrap_or_default();
            format!(
                "{who} does not fit: needs {} cpu and {} memory on one node, no node {place} has \
                 both free (closest: {name} with {} cpu and {} memory)",
                fmt_cpu(self.need.cpu_millis),
                fmt_memory(self.need.memory_bytes),
                fmt_cpu(free.cpu_millis),
                fmt_memory(free.memory_bytes),
            )
        };
        let total = get(&self.total_free, resource);
        if resource != Resource::Pods && total >= get(&self.need, resource) {
            msg.push_str(&format!(
                "; {} {} free in total, split across {} nodes",
                fmt_amount(resource, total),
                resource.as_str(),
                self.candidates
            ));
        }
        if self.placed > 0 {
            msg.push_str(&format!(
                " ({} of {} pods of the gang placed)",
                self.placed, self.gang_size
            ));
        }
        msg
    }

    /// As the submitter's wait reason.
    pub fn wait_reason(&self) -> WaitReason {
        let (resource, short_by) = self.scarcest();
        WaitReason {
            kind: WaitKind::Insufficient {
                role: self.role,
                resource,
                short_by,
                pool: self.pool.clone(),
            },
            message: self.message(),
        }
    }
}

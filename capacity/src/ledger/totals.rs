//! What the ledger's entries take, per node and per namespace, kept up to date as entries come,
//! change and go. Every capacity check applies the whole ledger; walking every entry for it
//! made a wave's checks — serialized, each seeing the promises before it — cost
//! O(entries × slots) apiece (a third of the submitter's time while 1,000 jobs were admitted).

use std::collections::HashMap;

use super::{Entry, SlotState, spreads};
use crate::model::Resources;
use crate::pack::parse_virtual_node;

/// Sums over a set of entries (see the module docs). Counts go with every sum, so a key leaves
/// the map exactly when nothing is left under it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Totals {
    /// Per node: the slots not yet carried by a bound pod, and their requests.
    pub nodes: HashMap<String, (u32, Resources)>,
    /// Per namespace: the slots with no pod yet, and their requests.
    pub namespaces: HashMap<String, (u32, Resources)>,
    /// Per existing node: slots of entries with pods on the way planned on it — of any entry,
    /// and of spreading ones.
    pub placed: HashMap<String, (u32, u32)>,
}

impl Totals {
    /// The sums over `entries`, computed afresh.
    pub fn of<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Self {
        let mut totals = Totals::default();
        for e in entries {
            totals.add(e);
        }
        totals
    }

    /// Counts an entry in.
    pub fn add(&mut self, e: &Entry) {
        self.count(e, true);
    }

    /// Counts an entry out (exactly what [`Totals::add`] counted in for it, unchanged).
    pub fn remove(&mut self, e: &Entry) {
        self.count(e, false);
    }

    fn count(&mut self, e: &Entry, add: bool) {
        let open = e.slots.iter().any(|s| s.state != SlotState::Bound);
        let spreading = open && spreads(e.slots.iter().map(|s| (s.role, s.node.as_str())));
        for s in &e.slots {
            if s.state != SlotState::Bound {
                sum(&mut self.nodes, &s.node, &s.requests, add);
            }
            if s.state == SlotState::Reserved {
                sum(&mut self.namespaces, &e.namespace, &s.requests, add);
            }
            if open && parse_virtual_node(&s.node).is_none() {
                let (all, spread) = self.placed.entry(s.node.clone()).or_default();
                let step = |n: &mut u32, by: bool| {
                    if by {
                        *n = if add { *n + 1 } else { n.saturating_sub(1) };
                    }
                };
                step(all, true);
                step(spread, spreading);
                if *all == 0 {
                    self.placed.remove(&s.node);
                }
            }
        }
    }
}

fn sum(map: &mut HashMap<String, (u32, Resources)>, key: &str, r: &Resources, add: bool) {
    if add {
        let (n, total) = map.entry(key.to_string()).or_default();
        *n += 1;
        *total = total.saturating_add(r);
    } else if let Some((n, total)) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        *total = total.saturating_sub(r);
        if *n == 0 {
            map.remove(key);
        }
    }
}

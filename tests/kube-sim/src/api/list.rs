//! LIST: selectors, the pods-by-node index, paging.

use std::sync::Arc;

use crate::cluster::Cluster;
use crate::resources::Res;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Key, Obj};

/// A list request.
#[derive(Debug, Clone, Default)]
pub struct ListOpts {
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// `limit` (0 = no limit).
    pub limit: usize,
    /// Decoded `continue` token: (list rv, last key).
    pub cont: Option<(u64, Key)>,
}

/// Whether an object passes both selectors.
pub fn selected(o: &Obj, l: &LabelSelector, f: &FieldSelector) -> bool {
    (l.is_empty() || l.matches(&o.labels)) && (f.is_empty() || f.matches(&o.value))
}

/// List objects. Returns the items, the list resourceVersion and the next continue key.
pub fn list(
    c: &Cluster,
    res: Res,
    ns: Option<&str>,
    o: &ListOpts,
) -> (Vec<Arc<Obj>>, u64, Option<Key>) {
    let rv = o
        .cont
        .as_ref()
        .map(|(rv, _)| *rv)
        .unwrap_or_else(|| c.store.rv());
    let after = o.cont.as_ref().map(|(_, k)| k);
    let mut out = Vec::new();
    let mut next = None;
    // Index: pods by node.
    if res == Res::Pod
        && let Some(node) = o.fields.exact("spec.nodeName")
        && !node.is_empty()
    {
        let mut pods = c.store.pods_on_node(node);
        pods.retain(|p| ns.is_none_or(|n| p.key.0 == n) && after.is_none_or(|a| p.key > *a));
        for p in pods {
            if selected(&p, &o.labels, &o.fields) {
                if o.limit > 0 && out.len() == o.limit {
                    next = out.last().map(|l: &Arc<Obj>| l.key.clone());
                    break;
                }
                out.push(p);
            }
        }
        return (out, rv, next);
    }
    for obj in c.store.iter(res, ns, after) {
        if selected(obj, &o.labels, &o.fields) {
            if o.limit > 0 && out.len() == o.limit {
                next = out.last().map(|l: &Arc<Obj>| l.key.clone());
                break;
            }
            out.push(obj.clone());
        }
    }
    (out, rv, next)
}

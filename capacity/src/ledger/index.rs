//! Which promises a new pod may convert, found without walking every promise. A pod converts
//! only an entry whose whole selector its labels carry, so each entry is filed under its
//! selector's first label, and a pod looks up its own labels there. Walking every entry for
//! every new pod made a wave quadratic: 10,000 admissions in flight, 20,000 pods, a namespace
//! and a selector compared each time (the nightly wave's profile: a tenth of the CPU).

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Entry keys by namespace, then by their selector's first label (name, then value). Entries
/// with an empty selector are not filed: they match no pod.
#[derive(Debug, Clone, Default)]
pub(super) struct SelectorIndex {
    by_namespace: HashMap<String, HashMap<String, HashMap<String, BTreeSet<String>>>>,
}

impl SelectorIndex {
    /// Files `key` (an entry of `namespace` with `selector`).
    pub(super) fn insert(
        &mut self,
        namespace: &str,
        selector: &BTreeMap<String, String>,
        key: &str,
    ) {
        let Some((name, value)) = selector.iter().next() else {
            return;
        };
        self.by_namespace
            .entry(namespace.to_owned())
            .or_default()
            .entry(name.clone())
            .or_default()
            .entry(value.clone())
            .or_default()
            .insert(key.to_owned());
    }

    /// Unfiles `key`, filed with the same namespace and selector.
    pub(super) fn remove(
        &mut self,
        namespace: &str,
        selector: &BTreeMap<String, String>,
        key: &str,
    ) {
        let Some((name, value)) = selector.iter().next() else {
            return;
        };
        let Some(names) = self.by_namespace.get_mut(namespace) else {
            return;
        };
        if let Some(values) = names.get_mut(name) {
            if let Some(keys) = values.get_mut(value) {
                keys.remove(key);
                if keys.is_empty() {
                    values.remove(value);
                }
            }
            if values.is_empty() {
                names.remove(name);
            }
        }
        if names.is_empty() {
            self.by_namespace.remove(namespace);
        }
    }

    /// The keys of every entry a pod of `namespace` with `labels` may match (a superset: the
    /// caller checks the whole selector), in key order — the order the ledger walks entries.
    pub(super) fn candidates(
        &self,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> BTreeSet<&str> {
        let Some(names) = self.by_namespace.get(namespace) else {
            return BTreeSet::new();
        };
        labels
            .iter()
            .filter_map(|(name, value)| names.get(name)?.get(value))
            .flatten()
            .map(String::as_str)
            .collect()
    }

    /// Whether nothing is filed.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.by_namespace.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::labels;

    #[test]
    fn a_pod_finds_the_entries_filed_under_one_of_its_labels_in_its_namespace() {
        let mut index = SelectorIndex::default();
        index.insert("ns", &labels(&[("app", "a"), ("attempt", "1")]), "a");
        index.insert("ns", &labels(&[("app", "b")]), "b");
        index.insert("ns", &labels(&[("app", "b")]), "b2");
        index.insert("other", &labels(&[("app", "a")]), "elsewhere");
        index.insert("ns", &BTreeMap::new(), "anonymous");
        // (pod namespace, pod labels, candidates)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: [Case; 6] = [
            ("ns", &[("app", "a"), ("attempt", "1")], &["a"]),
            // Filed under its first label only: the caller checks the rest.
            ("ns", &[("app", "a")], &["a"]),
            ("ns", &[("app", "b"), ("role", "driver")], &["b", "b2"]),
            ("other", &[("app", "a")], &["elsewhere"]),
            ("ns", &[("attempt", "1")], &[]),
            ("missing", &[("app", "a")], &[]),
        ];
        for (namespace, pod, want) in cases {
            let got: Vec<&str> = index
                .candidates(namespace, &labels(pod))
                .into_iter()
                .collect();
            assert_eq!(got, want, "{namespace} {pod:?}");
        }
    }

    #[test]
    fn removing_every_entry_leaves_nothing_filed() {
        let mut index = SelectorIndex::default();
        let (first, second) = (labels(&[("app", "a")]), labels(&[("app", "b")]));
        index.insert("ns", &first, "a");
        index.insert("ns", &second, "b");
        index.remove("ns", &first, "a");
        assert!(index.candidates("ns", &first).is_empty());
        assert_eq!(
            index
                .candidates("ns", &second)
                .into_iter()
                .collect::<Vec<_>>(),
            ["b"]
        );
        // Unknown keys and namespaces are ignored.
        index.remove("ns", &second, "nobody");
        index.remove("nowhere", &second, "b");
        index.remove("ns", &second, "b");
        assert!(index.is_empty());
    }

    /// Through a long random sequence (promises with shared, longer and empty selectors in two
    /// namespaces; pods created, bound, deleted; releases; promises made again under the same
    /// key), every new pod converts exactly the entry a walk over all entries would pick: the
    /// first, in key order, of its namespace whose selector its labels carry with a slot left.
    #[test]
    fn pods_convert_the_entry_a_walk_over_every_entry_would_pick() {
        use std::time::{Duration, Instant};

        use crate::fit::selector_matches;
        use crate::ledger::{Ledger, ObservedPod, SlotState};
        use crate::model::PodRole;
        use crate::testing::{gang, gi, xorshift};
        use crate::verdict::Placement;

        let now = Instant::now();
        let mut ledger = Ledger::new(Duration::from_secs(3600));
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let namespaces = ["ns", "other"];
        let apps = ["a", "b", "c"];
        let mut pods: Vec<(String, &str, BTreeMap<String, String>)> = Vec::new();
        // Every executor of the gangs below asks for this.
        let executor = gang("x", "ns", (500, gi(1)), 1, (500, gi(1))).pods[1].requests;
        let (mut converted, mut unmatched) = (0, 0);
        for step in 0..4000u64 {
            match next(6) {
                0 | 1 => {
                    let key = format!("g{}", next(12));
                    let namespace = namespaces[next(2) as usize];
                    let mut g = gang(
                        &key,
                        namespace,
                        (500, gi(1)),
                        1 + next(2) as usize,
                        (500, gi(1)),
                    );
                    // Selectors several entries share, longer ones, and none at all.
                    g.pod_labels = match next(4) {
                        0 => labels(&[("app", apps[next(3) as usize])]),
                        1 => labels(&[("app", apps[next(3) as usize]), ("attempt", "1")]),
                        2 => labels(&[("app", &key)]),
                        _ => BTreeMap::new(),
                    };
                    let nodes = g.pods.iter().map(|_| "n".to_owned()).collect();
                    ledger.reserve(
                        &g,
                        &Placement {
                            nodes,
                            scale_up: vec![],
                        },
                        now,
                    );
                }
                2 | 3 => {
                    let namespace = namespaces[next(2) as usize];
                    let mut pod_labels = labels(&[("app", apps[next(3) as usize])]);
                    if next(2) == 0 {
                        pod_labels.insert("attempt".into(), "1".into());
                    }
                    if next(3) == 0 {
                        pod_labels = labels(&[("app", &format!("g{}", next(12)))]);
                    }
                    let id = format!("pod-{step}");
                    let want = ledger
                        .entries
                        .iter()
                        .find(|(_, e)| {
                            e.namespace == namespace
                                && !e.selector.is_empty()
                                && selector_matches(&e.selector, &pod_labels)
                                && e.slots.iter().any(|s| s.state == SlotState::Reserved)
                        })
                        .map(|(k, _)| k.clone());
                    let changed = ledger.observe(&ObservedPod {
                        id: &id,
                        namespace,
                        labels: &pod_labels,
                        role: Some(PodRole::Executor),
                        requests: executor,
                        bound: next(2) == 0,
                        active: true,
                    });
                    let got = ledger.by_pod.get(&id).map(|(k, _)| k.clone());
                    let released_at_once = changed && got.is_none();
                    if released_at_once {
                        // Its last slot bound: the entry converted whole and left.
                        assert!(
                            want.as_ref().is_some_and(|k| ledger.get(k).is_none()),
                            "step {step}"
                        );
                    } else {
                        assert_eq!(got, want, "step {step}: pod {pod_labels:?} in {namespace}");
                    }
                    if want.is_some() {
                        converted += 1;
                        pods.push((id, namespace, pod_labels));
                    } else {
                        unmatched += 1;
                    }
                }
                4 if !pods.is_empty() => {
                    let (id, _, _) = pods.swap_remove(next(pods.len() as u64) as usize);
                    ledger.forget(&id);
                }
                _ => {
                    ledger.release(&format!("g{}", next(12)));
                }
            }
            // Nothing is kept for released entries or forgotten pods, and the pods by entry
            // are exactly the inverse of the entry by pod.
            for (pod, (key, _)) in &ledger.by_pod {
                assert!(
                    ledger.entries.contains_key(key),
                    "step {step}: {pod} of released {key}"
                );
                assert!(
                    ledger.pods_of.get(key).is_some_and(|p| p.contains(pod)),
                    "step {step}: {pod} missing from {key}'s pods"
                );
            }
            assert!(
                ledger
                    .pods_of
                    .keys()
                    .all(|k| ledger.entries.contains_key(k))
            );
            assert_eq!(
                ledger.pods_of.values().map(Vec::len).sum::<usize>(),
                ledger.by_pod.len(),
                "step {step}"
            );
        }
        assert!(
            converted > 300 && unmatched > 300,
            "{converted} / {unmatched}"
        );
    }
}

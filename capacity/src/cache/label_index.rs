//! Pods by label value, for the label keys that reservations select on: a reservation takes
//! the pods of its gang that exist already, and finding them by scanning the namespace cost
//! (pods × reservations) over a wave — half of the admission's CPU at 10,000 jobs. A key is
//! indexed the first time a selector uses it and kept up to date after, so only the keys
//! the orchestrator selects on (job id and attempt) cost memory.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::PodRecord;
use crate::fit::selector_matches;

/// Label key → value → pod keys.
#[derive(Debug, Default)]
pub(super) struct LabelIndex {
    by_key: HashMap<String, HashMap<String, HashSet<String>>>,
}

impl LabelIndex {
    /// A pod appeared (or its new labels, after [`LabelIndex::remove`] of the old ones).
    pub(super) fn insert(&mut self, pod: &str, labels: &BTreeMap<String, String>) {
        for (key, values) in &mut self.by_key {
            if let Some(value) = labels.get(key) {
                values
                    .entry(value.clone())
                    .or_default()
                    .insert(pod.to_owned());
            }
        }
    }

    /// A pod went, or is about to change its labels.
    pub(super) fn remove(&mut self, pod: &str, labels: &BTreeMap<String, String>) {
        for (key, values) in &mut self.by_key {
            let Some(value) = labels.get(key) else {
                continue;
            };
            if let Some(pods) = values.get_mut(value) {
                pods.remove(pod);
                if pods.is_empty() {
                    values.remove(value);
                }
            }
        }
    }

    /// Every pod was replaced (a relist).
    pub(super) fn rebuild(&mut self, pods: &HashMap<String, PodRecord>) {
        for values in self.by_key.values_mut() {
            values.clear();
        }
        for (key, p) in pods {
            self.insert(key, &p.labels);
        }
    }

    /// The keys of the pods whose labels `selector` matches (none for an empty selector),
    /// indexing the selector's keys from `pods` first when they are new.
    pub(super) fn matching(
        &mut self,
        selector: &BTreeMap<String, String>,
        pods: &HashMap<String, PodRecord>,
    ) -> Vec<String> {
        for key in selector.keys() {
            if !self.by_key.contains_key(key) {
                let mut values: HashMap<String, HashSet<String>> = HashMap::new();
                for (pod, p) in pods {
                    if let Some(value) = p.labels.get(key) {
                        values.entry(value.clone()).or_default().insert(pod.clone());
                    }
                }
                self.by_key.insert(key.clone(), values);
            }
        }
        // The smallest set of pods carrying one of the selected labels; a label no pod
        // carries means no pod matches.
        let mut smallest: Option<&HashSet<String>> = None;
        for (key, value) in selector {
            let Some(pods) = self.by_key.get(key).and_then(|values| values.get(value)) else {
                return Vec::new();
            };
            if smallest.is_none_or(|s| pods.len() < s.len()) {
                smallest = Some(pods);
            }
        }
        smallest
            .into_iter()
            .flatten()
            .filter(|key| {
                pods.get(*key)
                    .is_some_and(|p| selector_matches(selector, &p.labels))
            })
            .cloned()
            .collect()
    }
}

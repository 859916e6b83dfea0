//! The object store: one monotonic resourceVersion over all resources, objects kept
//! as JSON plus their serialized bytes, secondary indexes (pods by node, allocated
//! sums per node, quota usage per namespace, dependents by owner uid), a bounded
//! event history per resource for watch resumption, and a broadcast channel per
//! resource that live watches subscribe to.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::object;
use crate::podres::{self, Res2};
use crate::resources::{ALL, RES_COUNT, Res};

/// `(namespace, name)`; namespace is `""` for cluster-scoped objects.
pub type Key = (String, String);

/// What the controllers need to know about a pod without parsing it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    /// `spec.nodeName`, when bound.
    pub node: Option<String>,
    /// `status.phase`.
    pub phase: String,
    /// Effective requests.
    pub requests: Res2,
    /// Effective limits.
    pub limits: Res2,
    /// `spec.priority`.
    pub priority: i32,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

impl PodFacts {
    /// Succeeded or Failed: no longer holds node room or quota.
    pub fn terminal(&self) -> bool {
        self.phase == "Succeeded" || self.phase == "Failed"
    }

    fn of(v: &Value) -> PodFacts {
        let spec = v.get("spec").cloned().unwrap_or(Value::Null);
        PodFacts {
            node: spec
                .get("nodeName")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from),
            phase: v
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Pending")
                .to_string(),
            requests: podres::pod_requests(&spec),
            limits: podres::pod_limits(&spec),
            priority: spec.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32,
            deleting: v.pointer("/metadata/deletionTimestamp").is_some(),
        }
    }
}

/// A stored object: its JSON, its bytes and what indexes need.
#[derive(Debug)]
pub struct Obj {
    /// resourceVersion of this state.
    pub rv: u64,
    /// `(namespace, name)`.
    pub key: Key,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// The object.
    pub value: Value,
    /// `value` serialized.
    pub json: Bytes,
    /// Pod facts (pods only).
    pub pod: Option<PodFacts>,
    /// Owner uids.
    pub owners: Vec<String>,
}

impl Obj {
    fn new(res: Res, rv: u64, value: Value) -> Obj {
        let key = (
            object::namespace(&value).to_string(),
            object::name(&value).to_string(),
        );
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Obj {
            rv,
            uid: object::meta_str(&value, "uid").unwrap_or("").to_string(),
            labels: object::meta_map(&value, "labels"),
            pod: (res == Res::Pod).then(|| PodFacts::of(&value)),
            owners: object::owner_uids(&value),
            key,
            value,
            json,
        }
    }
}

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// ADDED.
    Added,
    /// MODIFIED.
    Modified,
    /// DELETED.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as history keeps it and watches receive it.
#[derive(Debug)]
pub struct WatchEvent {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// Type.
    pub etype: EventType,
    /// The object after the change (for DELETED: its last state).
    pub obj: Arc<Obj>,
    /// The object before the change.
    pub prev: Option<Arc<Obj>>,
}

/// Room a node has given out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Alloc {
    /// Sum of pod requests.
    pub req: Res2,
    /// Number of pods.
    pub pods: i64,
}

/// What non-terminal pods in a namespace use (the quota controller's view).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Non-terminal pods.
    pub pods: i64,
    /// Sum of requests.
    pub requests: Res2,
    /// Sum of limits.
    pub limits: Res2,
    /// All pods (`count/pods`).
    pub count_pods: i64,
}

/// A change the controllers have not looked at yet.
#[derive(Debug, Clone)]
pub struct Change {
    /// Resource.
    pub res: Res,
    /// Event.
    pub event: Arc<WatchEvent>,
}

/// Per-resource storage.
#[derive(Debug)]
pub struct KindStore {
    /// Objects ordered by key (paging relies on this order).
    pub objects: BTreeMap<Key, Arc<Obj>>,
    /// Pods by `spec.nodeName`.
    pub by_node: HashMap<String, BTreeSet<Key>>,
    history: VecDeque<Arc<WatchEvent>>,
    /// Every event with rv > `history_start` is still in `history`.
    pub history_start: u64,
    cap: usize,
    /// Live watches subscribe here.
    pub tx: broadcast::Sender<Arc<WatchEvent>>,
    /// resourceVersion of the last write to this resource (caches key on it).
    pub last_rv: u64,
}

/// The whole store.
#[derive(Debug)]
pub struct Store {
    rv: u64,
    kinds: Vec<KindStore>,
    /// Per node: what bound, non-terminal pods request.
    pub node_alloc: HashMap<String, Alloc>,
    /// Per namespace: pod usage.
    pub ns_usage: HashMap<String, Usage>,
    /// Owner uid → dependents.
    pub dependents: HashMap<String, BTreeSet<(Res, Key)>>,
    /// uid → object.
    pub uids: HashMap<String, (Res, Key)>,
    /// Changes since the controllers last looked.
    pub changes: Vec<Change>,
}

/// Capacity of each broadcast channel; a watch that falls further behind is closed.
const BROADCAST_CAP: usize = 65_536;

impl Store {
    /// An empty store keeping `history` events per resource.
    pub fn new(history: usize) -> Store {
        let kinds = ALL
            .iter()
            .map(|_| KindStore {
                objects: BTreeMap::new(),
                by_node: HashMap::new(),
                history: VecDeque::new(),
                history_start: 0,
                cap: history.max(1),
                tx: broadcast::channel(BROADCAST_CAP).0,
                last_rv: 0,
            })
            .collect::<Vec<_>>();
        debug_assert_eq!(kinds.len(), RES_COUNT);
        Store {
            rv: 0,
            kinds,
            node_alloc: HashMap::new(),
            ns_usage: HashMap::new(),
            dependents: HashMap::new(),
            uids: HashMap::new(),
            changes: Vec::new(),
        }
    }

    /// The latest resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// One resource's storage.
    pub fn kind(&self, res: Res) -> &KindStore {
        &self.kinds[res.idx()]
    }

    /// Get an object.
    pub fn get(&self, res: Res, ns: &str, name: &str) -> Option<Arc<Obj>> {
        self.kinds[res.idx()]
            .objects
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Get an object by uid.
    pub fn get_uid(&self, uid: &str) -> Option<(Res, Arc<Obj>)> {
        let (res, key) = self.uids.get(uid)?;
        self.kinds[res.idx()]
            .objects
            .get(key)
            .map(|o| (*res, o.clone()))
    }

    /// Objects of a resource, optionally in one namespace, in key order, starting after `after`.
    pub fn iter<'a>(
        &'a self,
        res: Res,
        ns: Option<&'a str>,
        after: Option<&'a Key>,
    ) -> Box<dyn Iterator<Item = &'a Arc<Obj>> + 'a> {
        use std::ops::Bound;
        let objects = &self.kinds[res.idx()].objects;
        let start: Bound<Key> = match (after, ns) {
            (Some(k), _) => Bound::Excluded(k.clone()),
            (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        let it = objects.range((start, Bound::Unbounded)).map(|(_, v)| v);
        match ns {
            Some(ns) => Box::new(it.take_while(move |o| o.key.0 == ns)),
            None => Box::new(it),
        }
    }

    /// Pods bound to a node.
    pub fn pods_on_node(&self, node: &str) -> Vec<Arc<Obj>> {
        let ks = &self.kinds[Res::Pod.idx()];
        ks.by_node
            .get(node)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| ks.objects.get(k).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of objects of a resource.
    pub fn count(&self, res: Res) -> usize {
        self.kinds[res.idx()].objects.len()
    }

    /// Store a new or changed object; assigns the next resourceVersion.
    pub fn put(&mut self, res: Res, mut value: Value) -> Arc<Obj> {
        self.rv += 1;
        let rv = self.rv;
        object::metadata_mut(&mut value)
            .insert("resourceVersion".into(), Value::String(rv.to_string()));
        let obj = Arc::new(Obj::new(res, rv, value));
        let prev = self.kinds[res.idx()]
            .objects
            .insert(obj.key.clone(), obj.clone());
        if let Some(p) = &prev {
            self.unindex(res, p);
        }
        self.index(res, &obj);
        let etype = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.emit(
            res,
            WatchEvent {
                rv,
                etype,
                obj: obj.clone(),
                prev,
            },
        );
        obj
    }

    /// Remove an object; the DELETED event carries a new resourceVersion.
    pub fn remove(&mut self, res: Res, ns: &str, name: &str) -> Option<Arc<Obj>> {
        let key = (ns.to_string(), name.to_string());
        let prev = self.kinds[res.idx()].objects.remove(&key)?;
        self.unindex(res, &prev);
        self.rv += 1;
        let rv = self.rv;
        let mut value = prev.value.clone();
        object::metadata_mut(&mut value)
            .insert("resourceVersion".into(), Value::String(rv.to_string()));
        let obj = Arc::new(Obj::new(res, rv, value));
        self.emit(
            res,
            WatchEvent {
                rv,
                etype: EventType::Deleted,
                obj: obj.clone(),
                prev: Some(prev),
            },
        );
        Some(obj)
    }

    fn emit(&mut self, res: Res, ev: WatchEvent) {
        let ev = Arc::new(ev);
        let ks = &mut self.kinds[res.idx()];
        ks.last_rv = ev.rv;
        ks.history.push_back(ev.clone());
        while ks.history.len() > ks.cap {
            if let Some(old) = ks.history.pop_front() {
                ks.history_start = old.rv;
            }
        }
        let _ = ks.tx.send(ev.clone());
        self.changes.push(Change { res, event: ev });
    }

    /// Events of `res` after `rv`, or `Err(oldest)` when some were dropped from history.
    pub fn events_since(&self, res: Res, rv: u64) -> Result<Vec<Arc<WatchEvent>>, u64> {
        let ks = &self.kinds[res.idx()];
        if rv < ks.history_start {
            return Err(ks.history_start);
        }
        let start = ks.history.partition_point(|e| e.rv <= rv);
        Ok(ks.history.iter().skip(start).cloned().collect())
    }

    /// Mark the history so that watches from before now get 410 (used at start-up).
    pub fn compact_history(&mut self) {
        let rv = self.rv;
        for ks in &mut self.kinds {
            ks.history.clear();
            ks.history_start = rv;
        }
    }

    fn index(&mut self, res: Res, o: &Arc<Obj>) {
        if !o.uid.is_empty() {
            self.uids.insert(o.uid.clone(), (res, o.key.clone()));
        }
        for u in &o.owners {
            self.dependents
                .entry(u.clone())
                .or_default()
                .insert((res, o.key.clone()));
        }
        if let Some(p) = &o.pod {
            if let Some(n) = &p.node {
                self.kinds[res.idx()]
                    .by_node
                    .entry(n.clone())
                    .or_default()
                    .insert(o.key.clone());
                if !p.terminal() {
                    let a = self.node_alloc.entry(n.clone()).or_default();
                    a.req.cpu += p.requests.cpu;
                    a.req.mem += p.requests.mem;
                    a.pods += 1;
                }
            }
            let u = self.ns_usage.entry(o.key.0.clone()).or_default();
            u.count_pods += 1;
            if !p.terminal() {
                u.pods += 1;
                u.requests.cpu += p.requests.cpu;
                u.requests.mem += p.requests.mem;
                u.limits.cpu += p.limits.cpu;
                u.limits.mem += p.limits.mem;
            }
        }
    }

    fn unindex(&mut self, res: Res, o: &Arc<Obj>) {
        if !o.uid.is_empty() {
            self.uids.remove(&o.uid);
        }
        for u in &o.owners {
            if let Some(set) = self.dependents.get_mut(u) {
                set.remove(&(res, o.key.clone()));
                if set.is_empty() {
                    self.dependents.remove(u);
                }
            }
        }
        if let Some(p) = &o.pod {
            if let Some(n) = &p.node {
                if let Some(set) = self.kinds[res.idx()].by_node.get_mut(n) {
                    set.remove(&o.key);
                }
                if !p.terminal()
                    && let Some(a) = self.node_alloc.get_mut(n)
                {
                    a.req.cpu -= p.requests.cpu;
                    a.req.mem -= p.requests.mem;
                    a.pods -= 1;
                }
            }
            if let Some(u) = self.ns_usage.get_mut(&o.key.0) {
                u.count_pods -= 1;
                if !p.terminal() {
                    u.pods -= 1;
                    u.requests.cpu -= p.requests.cpu;
                    u.requests.mem -= p.requests.mem;
                    u.limits.cpu -= p.limits.cpu;
                    u.limits.mem -= p.limits.mem;
                }
            }
        }
    }
}

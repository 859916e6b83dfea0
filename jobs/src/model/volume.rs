//! Volumes a job mounts, and their Kubernetes-style wire shape.

use serde::{Deserialize, Serialize};

use crate::quantity::MemoryBytes;

/// A volume mounted at the same path in driver and executors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "VolumeWire", into = "VolumeWire")]
pub struct Volume {
    /// DNS-1123 label, unique in the job.
    pub name: String,
    /// Absolute path in the containers.
    pub mount_path: String,
    /// Mount read-only.
    pub read_only: bool,
    /// What backs it.
    pub source: VolumeSource,
}

/// The allowed volume kinds. `hostPath` is deliberately absent: jobs must not reach into nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// Scratch space that lives as long as the pod (`emptyDir: {sizeLimit, medium}`).
    EmptyDir {
        /// Optional size limit.
        size_limit: Option<MemoryBytes>,
        /// `medium: "Memory"`: a tmpfs, counted against the container's memory.
        in_memory: bool,
    },
    /// An existing claim in the job's namespace (`persistentVolumeClaim: {claimName}`).
    PersistentVolumeClaim {
        /// Claim name.
        claim_name: String,
    },
    /// A ConfigMap in the job's namespace (`configMap: {name}`).
    ConfigMap {
        /// ConfigMap name.
        name: String,
    },
    /// A Secret in the job's namespace (`secret: {secretName}`).
    Secret {
        /// Secret name.
        secret_name: String,
    },
}

/// Volume wire shape, Kubernetes style: one source key beside `name` and `mountPath`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct VolumeWire {
    pub(crate) name: String,
    pub(crate) mount_path: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) empty_dir: Option<EmptyDirWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) persistent_volume_claim: Option<ClaimWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) config_map: Option<ConfigMapWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secret: Option<SecretWire>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EmptyDirWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) size_limit: Option<MemoryBytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) medium: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ClaimWire {
    pub(crate) claim_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ConfigMapWire {
    pub(crate) name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SecretWire {
    pub(crate) secret_name: String,
}

impl TryFrom<VolumeWire> for Volume {
    type Error = String;
    fn try_from(w: VolumeWire) -> Result<Self, String> {
        let mut sources = Vec::new();
        if let Some(e) = w.empty_dir {
            let in_memory = match e.medium.as_deref() {
                None | Some("") => false,
                Some("Memory") => true,
                Some(other) => {
                    return Err(format!(
                        "emptyDir medium {other:?} is not \"\" or \"Memory\""
                    ));
                }
            };
            sources.push(VolumeSource::EmptyDir {
                size_limit: e.size_limit,
                in_memory,
            });
        }
        if let Some(c) = w.persistent_volume_claim {
            sources.push(VolumeSource::PersistentVolumeClaim {
                claim_name: c.claim_name,
            });
        }
        if let Some(c) = w.config_map {
            sources.push(VolumeSource::ConfigMap { name: c.name });
        }
        if let Some(s) = w.secret {
            sources.push(VolumeSource::Secret {
                secret_name: s.secret_name,
            });
        }
        let source = match sources.len() {
            1 => sources.remove(0),
            _ => {
                return Err(
                    "give exactly one of emptyDir, persistentVolumeClaim, configMap, secret".into(),
                );
            }
        };
        Ok(Volume {
            name: w.name,
            mount_path: w.mount_path,
            read_only: w.read_only,
            source,
        })
    }
}

impl From<Volume> for VolumeWire {
    fn from(v: Volume) -> Self {
        let mut w = VolumeWire {
            name: v.name,
            mount_path: v.mount_path,
            read_only: v.read_only,
            ..VolumeWire::default()
        };
        match v.source {
            VolumeSource::EmptyDir {
                size_limit,
                in_memory,
            } => {
                w.empty_dir = Some(EmptyDirWire {
                    size_limit,
                    medium: in_memory.then(|| "Memory".to_owned()),
                })
            }
            VolumeSource::PersistentVolumeClaim { claim_name } => {
                w.persistent_volume_claim = Some(ClaimWire { claim_name })
            }
            VolumeSource::ConfigMap { name } => w.config_map = Some(ConfigMapWire { name }),
            VolumeSource::Secret { secret_name } => w.secret = Some(SecretWire { secret_name }),
        }
        w
    }
}

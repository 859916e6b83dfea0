//! The RBAC the project ships, for kube-sim to enforce: `deploy/base` rendered by the real
//! `kubectl kustomize`, and the ServiceAccount it runs the daemon as. Suites that run the
//! daemon's loops use that identity, so a permission the code needs and the manifests lack
//! fails them.

use std::path::Path;
use std::sync::OnceLock;

/// The daemon's identity in `deploy/base`, as kube-sim names a ServiceAccount (`ns/name`).
pub const DAEMON: &str = "spark-orchestrator/spark-orchestrator";
/// Its namespace and name.
pub const DAEMON_NAMESPACE: &str = "spark-orchestrator";
/// The ServiceAccount's name.
pub const DAEMON_NAME: &str = "spark-orchestrator";
/// The bearer token kube-sim maps to [`DAEMON`] in tests.
pub const DAEMON_TOKEN: &str = "test-daemon-token";
/// The bearer token of kube-sim's admin (`system:masters`) in tests.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// `kubectl kustomize deploy/base`, rendered once per test process.
pub fn rendered_base() -> &'static str {
    static RENDERED: OnceLock<String> = OnceLock::new();
    RENDERED.get_or_init(|| {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/base");
        let out = std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(&base)
            .output()
            .expect("kubectl is installed by scripts/services.sh");
        assert!(
            out.status.success(),
            "kubectl kustomize {} failed: {}",
            base.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("kustomize prints UTF-8")
    })
}

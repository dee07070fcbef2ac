//! Components: telling a workflow from an activity, checking what they
//! import, and compiling each digest once (kept on disk across restarts).

use super::Engine;
use super::exports::{ActivityCode, WorkflowCode};
use crate::store::ComponentKind;
use std::sync::Arc;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

/// A component ready to instantiate.
pub struct Loaded {
    pub digest: String,
    pub kind: ComponentKind,
    pub pre: Prepared,
}

pub enum Prepared {
    Workflow(WorkflowCode),
    Activity(ActivityCode),
}

/// Why an uploaded component is refused.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    WrongWorld(String),
}

/// Interfaces a workflow may import (versions aside). Everything else —
/// sockets, HTTP — is refused: a workflow's only way to the world is an
/// activity, which keeps it deterministic. The filesystem is offered with
/// nothing preopened, so no file can be opened.
const WORKFLOW_IMPORTS: &[&str] = &[
    "weft:workflow/context",
    "weft:workflow/types",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

fn unversioned(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

fn check_header(bytes: &[u8]) -> Result<(), DeployError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(DeployError::Invalid(
            "not a WebAssembly binary (it does not start with the `\\0asm` magic bytes)".into(),
        ));
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(DeployError::Invalid(
            "this is a core WebAssembly module, not a component: build the guest with \
             `cargo build --target wasm32-wasip2` (or `cargo component build`)"
                .into(),
        ));
    }
    Ok(())
}

impl Engine {
    /// Compile and check `bytes`: CPU-heavy, call it off the async runtime.
    pub fn compile(&self, bytes: &[u8]) -> Result<(Component, ComponentKind), DeployError> {
        check_header(bytes)?;
        let component = Component::new(&self.wasm, bytes)
            .map_err(|e| DeployError::Invalid(format!("invalid component: {e:#}")))?;
        let kind = self.world_of(&component)?;
        Ok((component, kind))
    }

    fn world_of(&self, component: &Component) -> Result<ComponentKind, DeployError> {
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(&self.wasm).map(|(n, _)| n.to_string()).collect();
        let has = |name: &str| exports.iter().any(|e| e == name);
        let kind = match (has("run"), has("invoke")) {
            (true, false) => ComponentKind::Workflow,
            (false, true) => ComponentKind::Activity,
            (true, true) => {
                return Err(DeployError::WrongWorld(
                    "the component exports both `run` and `invoke`: a component is either a \
                     workflow (world weft:workflow/workflow) or an activity (world \
                     weft:workflow/activity)"
                        .into(),
                ));
            }
            (false, false) => {
                let list = if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    exports.join(", ")
                };
                return Err(DeployError::WrongWorld(format!(
                    "the component is neither a workflow (world weft:workflow/workflow, which \
                     exports `run`) nor an activity (world weft:workflow/activity, which exports \
                     `invoke`); it exports {list}"
                )));
            }
        };
        if kind == ComponentKind::Workflow {
            let refused: Vec<String> = ty
                .imports(&self.wasm)
                .filter(|(name, item)| {
                    !WORKFLOW_IMPORTS.contains(&unversioned(name))
                        || !matches!(item.ty, ComponentItem::ComponentInstance(_))
                })
                .map(|(name, _)| format!("`{name}`"))
                .collect();
            if !refused.is_empty() {
                return Err(DeployError::WrongWorld(format!(
                    "the workflow imports {}, which workflows are not offered: a workflow has \
                     no filesystem, network or environment access (that is what keeps it \
                     replayable); do such work in an activity",
                    refused.join(", ")
                )));
            }
        }
        Ok(kind)
    }

    /// Compile, check and link `bytes` (CPU-heavy: call it off the async
    /// runtime).
    pub fn build(&self, digest: &str, bytes: &[u8]) -> Result<(Component, Loaded), DeployError> {
        let started = std::time::Instant::now();
        let (component, kind) = self.compile(bytes)?;
        tracing::info!("compiled component {digest} in {:?}", started.elapsed());
        let loaded = self.prepare(digest, &component, kind)?;
        Ok((component, loaded))
    }

    /// Link a compiled component: every import must be satisfied and the
    /// export must have the world's signature.
    pub fn prepare(
        &self,
        digest: &str,
        component: &Component,
        kind: ComponentKind,
    ) -> Result<Loaded, DeployError> {
        let wrong = |e: wasmtime::Error| {
            DeployError::WrongWorld(format!(
                "the {} does not match world weft:workflow/{}: {e:#}",
                kind.as_str(),
                kind.as_str()
            ))
        };
        let pre = match kind {
            ComponentKind::Workflow => {
                let pre = self
                    .workflow_linker
                    .instantiate_pre(component)
                    .map_err(wrong)?;
                Prepared::Workflow(WorkflowCode::new(pre).map_err(wrong)?)
            }
            ComponentKind::Activity => {
                let pre = self
                    .activity_linker
                    .instantiate_pre(component)
                    .map_err(wrong)?;
                Prepared::Activity(ActivityCode::new(pre).map_err(wrong)?)
            }
        };
        Ok(Loaded {
            digest: digest.to_string(),
            kind,
            pre,
        })
    }

    fn cache_path(&self, digest: &str) -> Option<std::path::PathBuf> {
        let dir = self.config.cache_dir.as_ref()?;
        Some(dir.join(format!("{digest}.{}.cwasm", self.engine_key)))
    }

    /// Keep a freshly compiled component: on disk for the next start, in
    /// memory for the next run.
    pub fn remember(&self, component: &Component, loaded: Loaded) -> Arc<Loaded> {
        if let Some(path) = self.cache_path(&loaded.digest)
            && !path.exists()
        {
            match component.serialize() {
                Ok(bytes) => {
                    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                    if let Err(e) =
                        std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, &path))
                    {
                        tracing::warn!("cannot write {}: {e}", path.display());
                    }
                }
                Err(e) => tracing::warn!("cannot serialize component {}: {e:#}", loaded.digest),
            }
        }
        let loaded = Arc::new(loaded);
        self.loaded
            .lock()
            .unwrap()
            .insert(loaded.digest.clone(), loaded.clone());
        loaded
    }

    pub fn cached(&self, digest: &str) -> Option<Arc<Loaded>> {
        self.loaded.lock().unwrap().get(digest).cloned()
    }

    /// The component for `digest`: from memory, from the on-disk cache, or
    /// compiled from `bytes()` (the stored blob) as a last resort.
    pub async fn load(
        self: &Arc<Self>,
        digest: &str,
        kind: ComponentKind,
        bytes: impl std::future::Future<Output = anyhow::Result<Vec<u8>>>,
    ) -> anyhow::Result<Arc<Loaded>> {
        if let Some(loaded) = self.cached(digest) {
            return Ok(loaded);
        }
        if let Some(path) = self.cache_path(digest)
            && path.exists()
        {
            let engine = self.clone();
            let digest_owned = digest.to_string();
            let from_disk = tokio::task::spawn_blocking(move || {
                // SAFETY: the cache directory is written only by weft, with
                // artifacts of this engine configuration (the key is in the name).
                let component = unsafe { Component::deserialize_file(&engine.wasm, &path) }?;
                let loaded = engine.prepare(&digest_owned, &component, kind)?;
                anyhow::Ok(loaded)
            })
            .await?;
            match from_disk {
                Ok(loaded) => {
                    tracing::debug!("loaded component {digest} from the compile cache");
                    let loaded = Arc::new(loaded);
                    self.loaded
                        .lock()
                        .unwrap()
                        .insert(digest.to_string(), loaded.clone());
                    return Ok(loaded);
                }
                Err(e) => tracing::warn!("ignoring cached artifact of {digest}: {e:#}"),
            }
        }
        let bytes = bytes.await?;
        let engine = self.clone();
        let digest_owned = digest.to_string();
        tokio::task::spawn_blocking(move || {
            let (component, loaded) = engine.build(&digest_owned, &bytes)?;
            Ok(engine.remember(&component, loaded))
        })
        .await?
    }
}

//! A loaded model: the validated artifact, its decoded plan, its relocated code and a thread
//! pool. `Send + Sync`: share one `Model` across threads, and give each thread a [`Session`].

use crate::artifact::{Artifact, Assets, SectionKind};
use crate::code::CodeModule;
use crate::exec::Session;
use crate::kernels::gemm::Isa;
use crate::plan::Plan;
use crate::{CpuFeatures, Error};
use std::path::Path;

/// How to load a model.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Worker threads for the kernels (default: the machine's available parallelism, or the
    /// `KILN_THREADS` environment variable).
    pub threads: Option<usize>,
    /// The most bytes one run may allocate (arena, input copies, outputs); a run that needs
    /// more is refused before allocating. Default: the memory available when the run's shapes
    /// change ([`crate::MemoryBudget::available`]).
    pub max_memory: Option<u64>,
}

/// A loaded, validated model ready to run.
#[derive(Debug)]
pub struct Model {
    artifact: Artifact,
    plan: Plan,
    code: Option<CodeModule>,
    pool: rayon::ThreadPool,
    isa: Isa,
    max_memory: Option<u64>,
    assets: Assets,
}

impl Model {
    /// Loads an artifact with default options.
    pub fn load(path: impl AsRef<Path>) -> Result<Model, Error> {
        Model::load_with(path, &LoadOptions::default())
    }

    /// Loads an artifact: maps and validates the file (header, checksum of every byte, target
    /// CPU features), decodes and validates the plan, and loads the code section (relocated,
    /// then mapped read+execute).
    pub fn load_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Model, Error> {
        let path = path.as_ref();
        let artifact = Artifact::open(path)?;
        Model::from_artifact(artifact, &path.display().to_string(), options)
    }

    /// Loads an artifact held in memory (validated against this machine's CPU features).
    pub fn from_bytes(bytes: Vec<u8>, options: &LoadOptions) -> Result<Model, Error> {
        let artifact = Artifact::from_bytes(bytes, CpuFeatures::host())?;
        Model::from_artifact(artifact, "<memory>", options)
    }

    fn from_artifact(
        artifact: Artifact,
        file: &str,
        options: &LoadOptions,
    ) -> Result<Model, Error> {
        let plan_bytes = artifact
            .section(SectionKind::Plan)
            .ok_or_else(|| Error::Plan {
                file: file.to_string(),
                source: crate::plan::PlanError::Invalid {
                    at: "artifact".into(),
                    message: "has no `plan` section".into(),
                },
            })?;
        let plan = Plan::decode(plan_bytes).map_err(|source| Error::Plan {
            file: file.to_string(),
            source,
        })?;
        // Everything is validated before anything is mapped executable: the artifact (checksum
        // included) by `Artifact::open`, then the object (sections, symbols, relocations) and
        // the plan against its exported functions and the weights section.
        let code_err = |source| Error::Code {
            file: file.to_string(),
            source: Box::new(source),
        };
        let object = artifact
            .section(SectionKind::Code)
            .filter(|obj| !obj.is_empty());
        let exported = match object {
            Some(obj) => CodeModule::exported_functions(obj).map_err(code_err)?,
            None => Vec::new(),
        };
        let weights_len = artifact
            .section(SectionKind::Weights)
            .map_or(0, |w| w.len()) as u64;
        let has = |s: &str| exported.iter().any(|f| f == s);
        plan.validate(weights_len, &has)
            .map_err(|source| Error::Plan {
                file: file.to_string(),
                source,
            })?;
        let assets = artifact
            .section(SectionKind::Assets)
            .map(Assets::decode)
            .transpose()
            .map_err(|source| Error::Assets {
                file: file.to_string(),
                source,
            })?
            .unwrap_or_default();
        let code = object.map(CodeModule::load).transpose().map_err(code_err)?;
        let threads = options
            .threads
            .or_else(|| std::env::var("KILN_THREADS").ok()?.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("kiln-worker-{i}"))
            .build()
            .map_err(|e| Error::Run {
                message: format!("cannot start {threads} worker threads: {e}"),
            })?;
        Ok(Model {
            artifact,
            plan,
            code,
            pool,
            isa: Isa::detect(),
            max_memory: options.max_memory,
            assets,
        })
    }

    /// The file named `name` among the artifact's assets (`tokenizer.json`, `config.json`, …),
    /// if it carries one.
    pub fn asset(&self, name: &str) -> Option<&[u8]> {
        self.assets
            .get(self.artifact.section(SectionKind::Assets)?, name)
    }

    /// The names of the artifact's assets, in the order they were written.
    pub fn asset_names(&self) -> impl Iterator<Item = &str> {
        self.assets.names()
    }

    /// The memory budget of one run ([`LoadOptions::max_memory`], else what is available now).
    pub fn budget(&self) -> crate::MemoryBudget {
        crate::MemoryBudget::from_option(self.max_memory)
    }

    /// Zeroed buffers for the model's states (a decoder's key/value caches) sized with
    /// `symbols` (`[("batch", 1), ("capacity", 512)]`), for [`Session::run_with_state`]. An
    /// unbound symbol, or buffers over the memory budget, are errors naming the state.
    pub fn new_state(&self, symbols: &[(&str, i64)]) -> Result<crate::State, Error> {
        crate::State::new(&self.plan, symbols, self.budget().bytes)
    }

    /// A new session (per-thread scratch memory) for running this model.
    pub fn session(&self) -> Session<'_> {
        Session::new(self)
    }

    /// The execution plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The validated artifact (header, sections).
    pub fn artifact(&self) -> &Artifact {
        &self.artifact
    }

    /// The loaded code, when the artifact has a code section.
    pub fn code(&self) -> Option<&CodeModule> {
        self.code.as_ref()
    }

    /// The weights section (empty when there is none).
    pub fn weights(&self) -> &[u8] {
        self.artifact.section(SectionKind::Weights).unwrap_or(&[])
    }

    /// The instruction set the library kernels use on this machine.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The worker pool.
    pub fn pool(&self) -> &rayon::ThreadPool {
        &self.pool
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn model_and_sessions_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<super::Model>();
    }
}

//! ONNX Runtime's options for a served model's runs: giving the CPU arena back after a run, computing
//! only the outputs that are served, and stopping a run past its deadline (`run_watch`).

use std::sync::Arc;

use ort::session::{
    HasSelectedOutputs, NoSelectedOutputs, OutputSelector, RunOptions, SelectedOutputMarker,
};

use super::run_watch::Stoppable;

/// ONNX Runtime's run option for shrinking the CPU arena (`memory.enable_memory_arena_shrinkage`, from
/// `onnxruntime_run_options_config_keys.h`): at the end of the run, every region of the arena that no
/// tensor holds is freed. It applies to the arena the session allocates from, the shared one of
/// `Runtime::limit_cpu_memory` included; regions another instance's run holds are left alone.
fn giving_back_cpu_memory() -> ort::Result<RunOptions> {
    let mut options = RunOptions::new()?;
    options.set("memory.enable_memory_arena_shrinkage", "cpu:0")?;
    Ok(options)
}

/// Run options that select outputs, shared with the thread that may stop their run.
struct Selected(RunOptions<HasSelectedOutputs>);

// SAFETY: ort keeps `RunOptions<HasSelectedOutputs>` from being `Sync` because outputs preallocated in
// its selector could then be written from two threads at once; these select outputs by name and
// preallocate none. The other thread only sets and clears ONNX Runtime's terminate flag
// (`RunOptionsSetTerminate`), which its API exists to have set from another thread while a run reads it.
unsafe impl Sync for Selected {}

/// The options one served session runs with. Each option set is made once, at load: a run picks one.
pub struct OrtRunOptions {
    plain: Arc<RunOptions>,
    /// Also giving the CPU arena's free regions back (`None` off the CPU, where the arena is the
    /// device's).
    give_back: Option<Arc<RunOptions>>,
    /// For a model with outputs that are not tensors: its tensor outputs alone, kept and given back.
    tensors_only: Option<(Arc<Selected>, Option<Arc<Selected>>)>,
}

/// Whichever option set a run goes with: an option set's terminate flag stops every run going with it.
pub enum Chosen<'a> {
    AllOutputs(&'a RunOptions<NoSelectedOutputs>),
    TensorsOnly(&'a RunOptions<HasSelectedOutputs>),
}

impl OrtRunOptions {
    /// The options of `session` (giving the CPU arena back with `give_back`).
    ///
    /// A model whose outputs are not all tensors computes its tensor outputs alone. Its other outputs
    /// (sequences, maps: the ZipMap of skl2onnx's classifiers) are left out of what is served
    /// (`Signature::left_out`), and ONNX Runtime would build them, one map per row, outside its arena and
    /// so outside the engine's memory limit.
    pub fn of(session: &ort::session::Session, give_back: bool) -> ort::Result<Self> {
        let outputs = session.outputs();
        let tensors_only = if outputs.iter().all(|o| o.dtype().is_tensor()) {
            None
        } else {
            let tensors = || {
                outputs
                    .iter()
                    .filter(|o| o.dtype().is_tensor())
                    .fold(OutputSelector::no_default(), |selector, o| {
                        selector.with(o.name())
                    })
            };
            let keep = Selected(RunOptions::new()?.with_outputs(tensors()));
            let given_back = if give_back {
                Some(Arc::new(Selected(
                    giving_back_cpu_memory()?.with_outputs(tensors()),
                )))
            } else {
                None
            };
            Some((Arc::new(keep), given_back))
        };
        Ok(Self {
            plain: Arc::new(RunOptions::new()?),
            give_back: if give_back {
                Some(Arc::new(giving_back_cpu_memory()?))
            } else {
                None
            },
            tensors_only,
        })
    }

    /// The options of a run that gives the arena back, or keeps it.
    pub fn chosen(&self, giving_back: bool) -> Chosen<'_> {
        match &self.tensors_only {
            Some((keep, give_back)) => {
                Chosen::TensorsOnly(&give_back.as_ref().filter(|_| giving_back).unwrap_or(keep).0)
            }
            None => Chosen::AllOutputs(
                self.give_back
                    .as_ref()
                    .filter(|_| giving_back)
                    .unwrap_or(&self.plain),
            ),
        }
    }

    /// What stops the session's run in progress, whichever options it went with.
    pub fn stop(&self) -> Arc<dyn Stoppable> {
        Arc::new(OrtStop {
            all_outputs: [Some(&self.plain), self.give_back.as_ref()]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            tensors_only: self
                .tensors_only
                .iter()
                .flat_map(|(keep, give_back)| [Some(keep), give_back.as_ref()])
                .flatten()
                .cloned()
                .collect(),
        })
    }
}

struct OrtStop {
    all_outputs: Vec<Arc<RunOptions>>,
    tensors_only: Vec<Arc<Selected>>,
}

impl OrtStop {
    /// Sets (`on`) or clears every option set's terminate flag.
    fn terminate(&self, on: bool) {
        let all = self.all_outputs.iter().map(|o| terminate(o, on));
        let selected = self.tensors_only.iter().map(|o| terminate(&o.0, on));
        for set in all.chain(selected) {
            if let Err(e) = set {
                tracing::warn!(error = %e, "ONNX Runtime refused to set a run's terminate flag");
            }
        }
    }
}

fn terminate<O: SelectedOutputMarker>(options: &RunOptions<O>, on: bool) -> ort::Result<()> {
    if on {
        options.terminate()
    } else {
        options.unterminate()
    }
}

impl Stoppable for OrtStop {
    fn stop(&self) {
        self.terminate(true);
    }

    fn clear(&self) {
        self.terminate(false);
    }
}

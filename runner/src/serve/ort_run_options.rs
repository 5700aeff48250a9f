//! ONNX Runtime's options for a served model's runs: giving the CPU arena back after a run, and computing
//! only the outputs that are served.

use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions};

/// ONNX Runtime's run option for shrinking the CPU arena (`memory.enable_memory_arena_shrinkage`, from
/// `onnxruntime_run_options_config_keys.h`): at the end of the run, every region of the arena that no
/// tensor holds is freed. It applies to the arena the session allocates from, the shared one of
/// `Runtime::limit_cpu_memory` included; regions another instance's run holds are left alone.
pub fn giving_back_cpu_memory() -> ort::Result<RunOptions> {
    let mut options = RunOptions::new()?;
    options.set("memory.enable_memory_arena_shrinkage", "cpu:0")?;
    Ok(options)
}

/// Run options that compute a model's tensor outputs alone. Its other outputs (sequences, maps: the
/// ZipMap of skl2onnx's classifiers) are left out of what is served (`Signature::left_out`), and ONNX
/// Runtime would build them, one map per row, outside its arena and so outside the engine's memory limit.
pub struct TensorsOnly {
    keep: RunOptions<HasSelectedOutputs>,
    /// Also giving the CPU arena's free regions back (`giving_back_cpu_memory`).
    give_back: Option<RunOptions<HasSelectedOutputs>>,
}

impl TensorsOnly {
    /// The options of a run that gives the arena back, or keeps it.
    pub fn options(&self, giving_back: bool) -> &RunOptions<HasSelectedOutputs> {
        self.give_back
            .as_ref()
            .filter(|_| giving_back)
            .unwrap_or(&self.keep)
    }

    /// `None` for a model whose outputs are all tensors (run without selecting its outputs).
    pub fn of(session: &ort::session::Session, give_back: bool) -> ort::Result<Option<Self>> {
        let outputs = session.outputs();
        if outputs.iter().all(|o| o.dtype().is_tensor()) {
            return Ok(None);
        }
        let tensors = || {
            outputs
                .iter()
                .filter(|o| o.dtype().is_tensor())
                .fold(OutputSelector::no_default(), |selector, o| {
                    selector.with(o.name())
                })
        };
        Ok(Some(Self {
            keep: RunOptions::new()?.with_outputs(tensors()),
            give_back: if give_back {
                Some(giving_back_cpu_memory()?.with_outputs(tensors()))
            } else {
                None
            },
        }))
    }
}

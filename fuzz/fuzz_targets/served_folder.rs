//! A model folder served in process as `kiln-runner serve --model-dir` serves one, under the limits the
//! Open Inference Protocol fuzzers share: small, so that what a request asks for meets them at sizes the
//! fuzzer reaches.

use std::path::PathBuf;

use kiln_runner::serve::in_process::InProcess;

/// The flags every fuzzed model is served with, beside its own.
const LIMITS: &[&str] = &[
    "--threads",
    "1",
    "--batch-delay-us",
    "0",
    "--max-batch-size",
    "4",
    "--max-request-mib",
    "1",
    "--max-response-mib",
    "2",
    "--max-engine-memory-mib",
    "64",
    // A request sent beside others waits for their memory as long as they run, however slow the build:
    // the REST target requires it to be answered as it is alone, never 503. (A wait that never ends is
    // libFuzzer's timeout, 120 s in scripts/fuzz.sh.)
    "--max-memory-wait-ms",
    "60000",
];

/// A folder of its own holding `files` (name and bytes), for the model `name`.
pub fn folder(name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-fuzz-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder for the model");
    for (file, bytes) in files {
        std::fs::write(dir.join(file), bytes).expect("the model's files written");
    }
    dir
}

/// Serves `dir` as `name` with `flags` and the shared limits, then removes the folder (what is served
/// was read at load).
pub async fn serve(dir: PathBuf, name: &str, flags: &[&str]) -> Result<InProcess, String> {
    let path = dir.to_str().expect("a UTF-8 path");
    let mut args = vec!["--model-dir", path, "--name", name];
    args.extend(flags);
    args.extend(LIMITS);
    let served = InProcess::load(&args).await;
    let _ = std::fs::remove_dir_all(&dir);
    served
}

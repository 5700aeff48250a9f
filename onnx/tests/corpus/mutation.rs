//! Seeded byte mutations of real models through the check, the optimizer and the evaluator. None may
//! panic. Each model's mutants run in a child process (this test binary again, with
//! `KILN_ONNX_CORPUS_MUTATE` naming the model) under a memory limit and a timeout: a mutated shape can
//! make an operator ask for more memory than exists, which aborts rather than panics, and that must be
//! reported with its model and seed instead of ending the whole run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use candle_core::Device;
use kiln_onnx::eval::Session;
use kiln_onnx::model_check;

use crate::caught;
use crate::listing::{self, CorpusModel};

const CHILD_ENV: &str = "KILN_ONNX_CORPUS_MUTATE";
/// Lines the child writes for the parent start with this.
const TAG: &str = "mutation:";

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// SplitMix64: a fixed, dependency-free generator, so a seed names the same mutant everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }

    /// A position, half the time within the first 64 KiB: ONNX writes the graph's nodes before its
    /// weights, so that is where a mutation changes structure rather than numbers.
    fn position(&mut self, len: usize) -> usize {
        if self.next().is_multiple_of(2) {
            self.below(len.min(64 * 1024))
        } else {
            self.below(len)
        }
    }
}

/// The mutant for `seed`, with what was done to it.
pub fn mutate(bytes: &[u8], seed: u64) -> (String, Vec<u8>) {
    let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ bytes.len() as u64);
    let mut out = bytes.to_vec();
    let len = out.len();
    match seed % 5 {
        0 => {
            let count = 1 + rng.below(8);
            for _ in 0..count {
                let at = rng.position(len);
                out[at] ^= 1 + rng.below(255) as u8;
            }
            (format!("{count} bytes flipped"), out)
        }
        1 => {
            let at = rng.below(len);
            out.truncate(at);
            (format!("truncated to {at} bytes"), out)
        }
        2 => {
            let (from, to, size) = (rng.below(len), rng.position(len), 1 + rng.below(256));
            let chunk: Vec<u8> = out[from..(from + size).min(len)].to_vec();
            let end = (to + chunk.len()).min(len);
            out[to..end].copy_from_slice(&chunk[..end - to]);
            (format!("{size} bytes from {from} copied over {to}"), out)
        }
        3 => {
            let (from, to, size) = (rng.below(len), rng.position(len), 1 + rng.below(64));
            let chunk: Vec<u8> = out[from..(from + size).min(len)].to_vec();
            out.splice(to..to, chunk);
            (format!("{size} bytes from {from} inserted at {to}"), out)
        }
        _ => {
            // A huge varint where a length, a dim or an attribute was: the values that make a decoder
            // or an operator allocate.
            let at = rng.position(len);
            let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
            let end = (at + huge.len()).min(len);
            out[at..end].copy_from_slice(&huge[..end - at]);
            (format!("huge varint written at {at}"), out)
        }
    }
}

/// Where the last panic happened: the hook this child installs keeps it, since a panic's payload holds
/// only the message.
static LAST_PANIC_AT: Mutex<String> = Mutex::new(String::new());

fn panic_at() -> String {
    LAST_PANIC_AT.lock().map(|s| s.clone()).unwrap_or_default()
}

/// The innermost kiln-onnx frame of a backtrace, `function at file:line`: an overflow's own location
/// is inside the standard library, which says nothing about which kiln code did it.
fn kiln_frame(backtrace: &str) -> Option<String> {
    let lines: Vec<&str> = backtrace.lines().map(str::trim).collect();
    let index = lines.iter().position(|l| l.contains("kiln_onnx::"))?;
    let function = lines[index]
        .split_once(": ")
        .map_or(lines[index], |(_, f)| f);
    let file = lines
        .get(index + 1)
        .and_then(|l| l.strip_prefix("at "))
        .unwrap_or("?");
    Some(format!("{function} at {file}"))
}

pub fn child_model() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Runs one model's mutants in this process, one tagged line per event, flushed as it happens so the
/// parent knows which seed was running if this process dies.
pub fn run_child(id: &str) {
    // This process runs nothing else, so its panic hook is its own to replace.
    std::panic::set_hook(Box::new(|info| {
        let at = kiln_frame(&std::backtrace::Backtrace::force_capture().to_string())
            .or_else(|| info.location().map(|l| l.to_string()))
            .unwrap_or_default();
        if let Ok(mut last) = LAST_PANIC_AT.lock() {
            *last = at;
        }
    }));
    let (dir, listing) = listing::load();
    let entry = listing
        .models
        .iter()
        .find(|m| m.id == id)
        .unwrap_or_else(|| panic!("{CHILD_ENV}={id} is not in the corpus"));
    let bytes = listing::read_model(&dir, entry);
    let inputs = listing::read_tensors(&dir, &entry.inputs);
    let run_budget = Duration::from_secs(knob("KILN_ONNX_CORPUS_MUTATION_RUN_SECS", 3));
    let mut run_time = Duration::ZERO;
    let (mut decoded, mut checked, mut ran) = (0, 0, 0);
    for seed in 0..knob("KILN_ONNX_CORPUS_MUTATIONS", 20) {
        let (what, mutant) = mutate(&bytes, seed);
        println!("{TAG} start {seed} {what}");
        let mutant = bytes::Bytes::from(mutant);
        match caught(|| model_check::check(mutant.clone())) {
            Ok(Ok(_)) => checked += 1,
            Ok(Err(_)) => {}
            Err(message) => println!("{TAG} panic {seed} check ({what}): {message}"),
        }
        let Ok(Ok(model)) = caught(|| model_check::decode(mutant.clone())) else {
            continue;
        };
        decoded += 1;
        let mut optimized = model.clone();
        if let Err(message) = caught(|| kiln_onnx::optimize::optimize(&mut optimized)) {
            println!(
                "{TAG} panic {seed} optimize ({what}): {message} (at {})",
                panic_at()
            );
        }
        let session = match caught(|| Session::new(&model, None, &Device::Cpu)) {
            Ok(Ok(session)) => session,
            Ok(Err(_)) => continue,
            Err(message) => {
                println!(
                    "{TAG} panic {seed} Session::new ({what}): {message} (at {})",
                    panic_at()
                );
                continue;
            }
        };
        if entry.heavy || run_time >= run_budget {
            continue;
        }
        let started = Instant::now();
        if let Err(message) = caught(|| session.run(&inputs)) {
            println!(
                "{TAG} panic {seed} run ({what}): {message} (at {})",
                panic_at()
            );
        }
        run_time += started.elapsed();
        ran += 1;
    }
    println!("{TAG} done decoded={decoded} checked={checked} ran={ran}");
}

/// One model's mutation results, as the parent saw them.
pub struct ModelReport {
    pub id: String,
    pub summary: String,
    /// Panics, aborts and hangs, one line each with the seed.
    pub failures: Vec<String>,
}

/// Starts this test binary again for one model's mutants, under `ulimit -v` and a timeout.
pub fn run_in_child(dir: &Path, model: &CorpusModel, test_name: &str) -> ModelReport {
    let exe = std::env::current_exe().expect("the test binary's path");
    let scratch = tempfile::tempdir().expect("a scratch folder");
    let (out_path, err_path) = (scratch.path().join("out"), scratch.path().join("err"));
    let memory_kib = knob("KILN_ONNX_CORPUS_MUTATION_MEMORY_MB", 8192) * 1024;
    let timeout = Duration::from_secs(knob("KILN_ONNX_CORPUS_MUTATION_TIMEOUT_SECS", 120));
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {memory_kib} && exec \"$0\" \"$@\""))
        .arg(&exe)
        .args([
            test_name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &model.id)
        .env("KILN_ONNX_CORPUS", dir)
        .stdout(std::fs::File::create(&out_path).expect("the child's stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("the child's stderr file"))
        .stdin(Stdio::null())
        .spawn()
        .expect("the test binary starts again");
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    report(model, &out, &err, status, started.elapsed())
}

fn report(
    model: &CorpusModel,
    out: &str,
    err: &str,
    status: Option<std::process::ExitStatus>,
    elapsed: Duration,
) -> ModelReport {
    let lines: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix(TAG)).collect();
    let mut failures: Vec<String> = lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("panic "))
        .map(|l| format!("{}: seed {l}", model.id))
        .collect();
    let done = lines.iter().find_map(|l| l.trim().strip_prefix("done "));
    let last_start = lines
        .iter()
        .rev()
        .find_map(|l| l.trim().strip_prefix("start "))
        .unwrap_or("(none started)");
    let ended_well = status.is_some_and(|s| s.success()) && done.is_some();
    if !ended_well {
        let how = match status {
            None => format!("hung: killed after {:.0} s", elapsed.as_secs_f64()),
            Some(s) => format!("the child process ended with {s}"),
        };
        let last_err: Vec<&str> = err.lines().rev().take(3).collect();
        failures.push(format!(
            "{}: {how} during seed {last_start}; its last words: {:?}",
            model.id, last_err
        ));
    }
    ModelReport {
        id: model.id.clone(),
        summary: format!(
            "{} in {:.1} s",
            done.unwrap_or("did not finish"),
            elapsed.as_secs_f64()
        ),
        failures,
    }
}

/// Prints one line per model and returns every failure.
pub fn print_reports(reports: &[ModelReport]) -> Vec<String> {
    println!("\n| model | mutants decoded / passing the check / run | failures |");
    println!("|---|---|---|");
    for r in reports {
        println!("| {} | {} | {} |", r.id, r.summary, r.failures.len());
    }
    let failures: Vec<String> = reports.iter().flat_map(|r| r.failures.clone()).collect();
    for failure in &failures {
        println!("{failure}");
    }
    failures
}

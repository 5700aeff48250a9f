//! The restricted pickle reader's first half: a scan that walks every opcode of a pickle without
//! executing anything, and accepts only what a plain PyTorch state dict needs.
//!
//! Python's unpickler calls whatever a pickle names (`os.system`, `builtins.eval`, ...). This scan models
//! the pickle machine's stack just far enough to know every global a pickle would look up — including
//! `STACK_GLOBAL`, whose module and name come from the stack — and refuses the file unless each is on the
//! allowlist of a tensor state dict. Opcodes that reach arbitrary objects by other routes (the extension
//! registry, `INST`/`OBJ` instance creation, out-of-band buffers) are refused outright.

use std::collections::{BTreeSet, HashMap};

use crate::ModelError;

/// Globals a PyTorch state dict uses (the same set as `torch.load(weights_only=True)` accepts for tensors).
pub const ALLOWED_GLOBALS: &[(&str, &str)] = &[
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch", "Tensor"),
    ("torch", "FloatStorage"),
    ("torch", "DoubleStorage"),
    ("torch", "HalfStorage"),
    ("torch", "BFloat16Storage"),
    ("torch", "LongStorage"),
    ("torch", "IntStorage"),
    ("torch", "ShortStorage"),
    ("torch", "CharStorage"),
    ("torch", "ByteStorage"),
    ("torch", "BoolStorage"),
    ("torch", "Size"),
    ("_codecs", "encode"),
];

/// Pickles larger than this are refused (a state dict's pickle holds names and shapes, not weights).
pub const MAX_PICKLE_BYTES: usize = 256 * 1024 * 1024;
const MAX_STACK: usize = 10_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleReport {
    pub protocol: u8,
    /// Every global the pickle names (all allowed, or the scan would have failed).
    pub globals: BTreeSet<(String, String)>,
    /// How many storages it refers to by persistent id (the tensors' data, kept beside the pickle).
    pub persistent_ids: usize,
}

#[derive(Debug, Clone)]
enum Item {
    Text(String),
    Mark,
    Other,
}

fn refused(reason: impl Into<String>) -> ModelError {
    ModelError::UnsafePickle(reason.into())
}

struct Machine<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<Item>,
    memo: HashMap<u64, Item>,
    report: PickleReport,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| {
            ModelError::Truncated(format!("pickle opcode argument at byte {}", self.at))
        })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn uint(&mut self, n: usize) -> Result<u64, ModelError> {
        let mut value = [0u8; 8];
        value[..n].copy_from_slice(self.take(n)?);
        Ok(u64::from_le_bytes(value))
    }

    fn sized(&mut self, len_bytes: usize) -> Result<&'a [u8], ModelError> {
        let len = self.uint(len_bytes)?;
        let len = usize::try_from(len)
            .map_err(|_| refused("an argument length does not fit in memory"))?;
        self.take(len)
    }

    fn line(&mut self) -> Result<&'a str, ModelError> {
        let rest = &self.bytes[self.at..];
        let end = rest.iter().position(|b| *b == b'\n').ok_or_else(|| {
            ModelError::Truncated("a pickle text argument has no end of line".into())
        })?;
        self.at += end + 1;
        std::str::from_utf8(&rest[..end])
            .map_err(|_| refused("a pickle text argument is not UTF-8"))
    }

    fn push(&mut self, item: Item) -> Result<(), ModelError> {
        if self.stack.len() >= MAX_STACK {
            return Err(refused("the pickle's stack grows without bound"));
        }
        self.stack.push(item);
        Ok(())
    }

    fn pop(&mut self) -> Result<Item, ModelError> {
        self.stack
            .pop()
            .ok_or_else(|| refused("an opcode pops from an empty stack"))
    }

    fn pop_n(&mut self, n: usize) -> Result<(), ModelError> {
        for _ in 0..n {
            if let Item::Mark = self.pop()? {
                return Err(refused("an opcode consumes a mark"));
            }
        }
        Ok(())
    }

    fn pop_to_mark(&mut self) -> Result<(), ModelError> {
        loop {
            if let Item::Mark = self.pop()? {
                return Ok(());
            }
        }
    }

    fn top(&self) -> Result<Item, ModelError> {
        self.stack
            .last()
            .cloned()
            .ok_or_else(|| refused("an opcode reads an empty stack"))
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), ModelError> {
        if !ALLOWED_GLOBALS.contains(&(module, name)) {
            return Err(refused(format!(
                "it would call {module}.{name}, which a tensor state dict never needs (kiln never runs pickle code)"
            )));
        }
        self.report
            .globals
            .insert((module.to_owned(), name.to_owned()));
        self.push(Item::Other)
    }

    fn memo_get(&mut self, key: u64) -> Result<(), ModelError> {
        let item = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| refused(format!("memo entry {key} is read before it is written")))?;
        self.push(item)
    }

    fn memo_put(&mut self, key: u64) -> Result<(), ModelError> {
        let item = self.top()?;
        if let Item::Mark = item {
            return Err(refused("a mark is memoized"));
        }
        self.memo.insert(key, item);
        Ok(())
    }

    /// Executes the stack effect of one opcode; returns false at STOP.
    fn step(&mut self) -> Result<bool, ModelError> {
        let opcode = self.take(1)?[0];
        match opcode {
            b'.' => return Ok(false),
            0x80 => {
                self.report.protocol = self.take(1)?[0];
            }
            0x95 => {
                self.uint(8)?;
            }
            b'(' => self.push(Item::Mark)?,
            b'0' => self.pop_n(1)?,
            b'1' => self.pop_to_mark()?,
            b'2' => {
                let top = self.top()?;
                self.push(top)?;
            }
            // Constants.
            b'N' | 0x88 | 0x89 | b'}' | b']' | b')' | 0x8f => self.push(Item::Other)?,
            b'I' | b'L' | b'F' => {
                self.line()?;
                self.push(Item::Other)?;
            }
            b'J' => {
                self.take(4)?;
                self.push(Item::Other)?;
            }
            b'K' => {
                self.take(1)?;
                self.push(Item::Other)?;
            }
            b'M' => {
                self.take(2)?;
                self.push(Item::Other)?;
            }
            b'G' => {
                self.take(8)?;
                self.push(Item::Other)?;
            }
            0x8a => {
                self.sized(1)?;
                self.push(Item::Other)?;
            }
            0x8b => {
                self.sized(4)?;
                self.push(Item::Other)?;
            }
            b'S' => {
                let text = self.line()?;
                let unquoted = text.trim_matches(|c| c == '\'' || c == '"').to_owned();
                self.push(Item::Text(unquoted))?;
            }
            b'V' => {
                let text = self.line()?.to_owned();
                self.push(Item::Text(text))?;
            }
            b'T' | b'X' | b'U' | 0x8c | 0x8d => {
                let len_bytes = match opcode {
                    b'T' | b'X' => 4,
                    b'U' | 0x8c => 1,
                    _ => 8,
                };
                let text = String::from_utf8_lossy(self.sized(len_bytes)?).into_owned();
                self.push(Item::Text(text))?;
            }
            b'B' | b'C' | 0x8e | 0x96 => {
                let len_bytes = match opcode {
                    b'B' => 4,
                    b'C' => 1,
                    _ => 8,
                };
                self.sized(len_bytes)?;
                self.push(Item::Other)?;
            }
            // Containers.
            b't' | b'l' | b'd' | 0x91 => {
                self.pop_to_mark()?;
                self.push(Item::Other)?;
            }
            0x85..=0x87 => {
                self.pop_n(usize::from(opcode - 0x84))?;
                self.push(Item::Other)?;
            }
            b'a' | b'b' => self.pop_n(1)?,
            b's' => self.pop_n(2)?,
            b'e' | b'u' | 0x90 => self.pop_to_mark()?,
            // Calls: the callable on the stack came from an allowed global (nothing else can produce one).
            b'R' | 0x81 => {
                self.pop_n(2)?;
                self.push(Item::Other)?;
            }
            0x92 => {
                self.pop_n(3)?;
                self.push(Item::Other)?;
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.global(module, name)?;
            }
            0x93 => {
                let (name, module) = (self.pop()?, self.pop()?);
                match (module, name) {
                    (Item::Text(module), Item::Text(name)) => self.global(&module, &name)?,
                    _ => {
                        return Err(refused(
                            "STACK_GLOBAL names a global that is not a plain string",
                        ));
                    }
                }
            }
            b'P' => {
                self.line()?;
                self.report.persistent_ids += 1;
                self.push(Item::Other)?;
            }
            b'Q' => {
                self.pop_n(1)?;
                self.report.persistent_ids += 1;
                self.push(Item::Other)?;
            }
            // Memo.
            b'p' => {
                let key = self
                    .line()?
                    .parse()
                    .map_err(|_| refused("PUT has a bad index"))?;
                self.memo_put(key)?;
            }
            b'q' => {
                let key = self.uint(1)?;
                self.memo_put(key)?;
            }
            b'r' => {
                let key = self.uint(4)?;
                self.memo_put(key)?;
            }
            0x94 => {
                let key = self.memo.len() as u64;
                self.memo_put(key)?;
            }
            b'g' => {
                let key = self
                    .line()?
                    .parse()
                    .map_err(|_| refused("GET has a bad index"))?;
                self.memo_get(key)?;
            }
            b'h' => {
                let key = self.uint(1)?;
                self.memo_get(key)?;
            }
            b'j' => {
                let key = self.uint(4)?;
                self.memo_get(key)?;
            }
            b'i' | b'o' => {
                return Err(refused(
                    "it creates class instances (INST/OBJ), which a state dict never does",
                ));
            }
            0x82..=0x84 => {
                return Err(refused(
                    "it looks up the copyreg extension registry (EXT1/2/4)",
                ));
            }
            0x97 | 0x98 => {
                return Err(refused(
                    "it uses out-of-band buffers, which a state dict never does",
                ));
            }
            other => {
                return Err(refused(format!(
                    "unknown opcode 0x{other:02x} at byte {}",
                    self.at - 1
                )));
            }
        }
        Ok(true)
    }
}

/// Scans a whole pickle. Accepts only an allowlisted state dict; never executes anything.
pub fn scan(bytes: &[u8]) -> Result<PickleReport, ModelError> {
    if bytes.len() > MAX_PICKLE_BYTES {
        return Err(ModelError::TooLarge {
            what: "the pickle",
            actual: bytes.len() as u64,
            limit: MAX_PICKLE_BYTES as u64,
        });
    }
    let mut machine = Machine {
        bytes,
        at: 0,
        stack: Vec::new(),
        memo: HashMap::new(),
        report: PickleReport {
            protocol: 0,
            globals: BTreeSet::new(),
            persistent_ids: 0,
        },
    };
    while machine.step()? {}
    if machine.at != bytes.len() {
        return Err(refused(format!(
            "{} bytes follow the STOP opcode",
            bytes.len() - machine.at
        )));
    }
    Ok(machine.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pickle_vectors::*;

    #[test]
    fn torch_state_dicts_pass_in_every_protocol() {
        for (protocol, bytes) in [(2, STATE_DICT_P2), (4, STATE_DICT_P4)] {
            let report = scan(bytes).unwrap_or_else(|e| panic!("protocol {protocol}: {e}"));
            assert_eq!(report.protocol, protocol);
            assert_eq!(report.persistent_ids, 2, "two tensors, two storages");
            let names: Vec<String> = report
                .globals
                .iter()
                .map(|(m, n)| format!("{m}.{n}"))
                .collect();
            assert_eq!(
                names,
                [
                    "collections.OrderedDict",
                    "torch.FloatStorage",
                    "torch._utils._rebuild_tensor_v2"
                ]
            );
        }
    }

    #[test]
    fn pickles_that_would_run_code_are_refused_with_what_they_call() {
        for (what, bytes, call) in [
            ("os.system, protocol 2", OS_SYSTEM_P2, "posix.system"),
            (
                "os.system, protocol 4 (STACK_GLOBAL)",
                OS_SYSTEM_P4,
                "posix.system",
            ),
            (
                "eval, protocol 0 (as __builtin__)",
                EVAL_P0,
                "__builtin__.eval",
            ),
            ("exec, protocol 3", EXEC_P3, "builtins.exec"),
            ("getattr, protocol 4", GETATTR_P4, "builtins.getattr"),
            (
                "subprocess.Popen, protocol 5",
                SUBPROCESS_P5,
                "subprocess.Popen",
            ),
        ] {
            let error = scan(bytes).expect_err(what).to_string();
            assert!(error.contains(call), "{what}: {error}");
        }
    }

    #[test]
    fn evasions_and_broken_pickles_are_refused() {
        let cases: &[(&str, &[u8], &str)] = &[
            ("empty", b"", "truncated"),
            ("no STOP", b"\x80\x02N", "truncated"),
            (
                "extension registry",
                b"\x80\x02\x82\x01.",
                "extension registry",
            ),
            ("INST", b"(ios\nsystem\n.", "INST/OBJ"),
            (
                "STACK_GLOBAL from a non-string",
                b"\x80\x04NN\x93.",
                "not a plain string",
            ),
            (
                "STACK_GLOBAL through the memo",
                b"\x80\x04\x8c\x05posix\x94\x8c\x06system\x94h\x00h\x01\x93.",
                "posix.system",
            ),
            ("unknown opcode", b"\x80\x02\xff.", "unknown opcode"),
            ("bytes after STOP", b"N.junk", "follow the STOP"),
            ("pop from empty stack", b"0.", "empty stack"),
            ("memo read before write", b"h\x05.", "read before"),
            (
                "string longer than the file",
                b"X\xff\xff\xff\x7fabc.",
                "truncated",
            ),
        ];
        for (what, bytes, expected) in cases {
            let error = scan(bytes).expect_err(what).to_string();
            assert!(error.contains(expected), "{what}: {error}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = scan(&bytes);
        }
    }
}

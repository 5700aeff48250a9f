//! PyTorch checkpoints as `torch.save` writes them: a zip holding `<name>/data.pkl` (the state dict's
//! structure) and `<name>/data/<key>` (the storages' bytes). The archive is checked before anything in it
//! is trusted: entry names stay inside it, nothing decompresses past a sane ratio, and the pickle passes
//! [`crate::pickle::scan`].

use std::io::{Read, Seek};

use crate::ModelError;
use crate::pickle::{self, MAX_PICKLE_BYTES, PickleReport};

/// More entries than this is not a checkpoint.
pub const MAX_ENTRIES: usize = 1_000_000;
/// An entry expanding more than this many times its compressed size is treated as a zip bomb.
pub const MAX_RATIO: u64 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PytorchReport {
    pub pickle: PickleReport,
    pub entries: usize,
    /// Uncompressed bytes the archive declares.
    pub uncompressed: u64,
}

fn check_name(name: &str) -> Result<(), ModelError> {
    let escapes = name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name.split('/').any(|part| part == "..")
        || name.as_bytes().get(1) == Some(&b':');
    if escapes {
        return Err(ModelError::InvalidArchive(format!(
            "entry {name:?} points outside the archive"
        )));
    }
    Ok(())
}

/// Checks a PyTorch zip checkpoint and scans its pickle.
pub fn scan<R: Read + Seek>(reader: R) -> Result<PytorchReport, ModelError> {
    let mut archive =
        zip::ZipArchive::new(reader).map_err(|e| ModelError::InvalidArchive(e.to_string()))?;
    if archive.len() > MAX_ENTRIES {
        return Err(ModelError::TooLarge {
            what: "the number of archive entries",
            actual: archive.len() as u64,
            limit: MAX_ENTRIES as u64,
        });
    }
    let mut uncompressed = 0u64;
    let mut pickle_entry = None;
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|e| ModelError::InvalidArchive(e.to_string()))?;
        let name = entry
            .name()
            .map_err(|e| ModelError::InvalidArchive(format!("an entry name is unreadable: {e}")))?
            .into_owned();
        check_name(&name)?;
        let (size, compressed) = (entry.size(), entry.compressed_size());
        if size > compressed.max(1).saturating_mul(MAX_RATIO) && size > 1024 * 1024 {
            return Err(ModelError::InvalidArchive(format!(
                "entry {name:?} expands {size} bytes from {compressed}: more than {MAX_RATIO} times (a zip bomb?)"
            )));
        }
        uncompressed = uncompressed.saturating_add(size);
        let mut parts = name.split('/');
        if let (Some(_), Some("data.pkl"), None) = (parts.next(), parts.next(), parts.next())
            && pickle_entry.replace(index).is_some()
        {
            return Err(ModelError::InvalidArchive(
                "the archive holds more than one data.pkl".into(),
            ));
        }
    }
    let index = pickle_entry.ok_or_else(|| {
        ModelError::InvalidArchive("no data.pkl: not a checkpoint written by torch.save".into())
    })?;
    let entry = archive
        .by_index(index)
        .map_err(|e| ModelError::InvalidArchive(e.to_string()))?;
    // Declared sizes can lie: read at most one byte past the limit, whatever the header says.
    let mut bytes = Vec::new();
    entry
        .take(MAX_PICKLE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    let pickle = pickle::scan(&bytes)?;
    Ok(PytorchReport {
        pickle,
        entries: archive.len(),
        uncompressed,
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use zip::write::SimpleFileOptions;

    use super::*;

    use crate::pickle_vectors::*;

    fn archive(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data, deflate) in entries {
            let method = if *deflate {
                zip::CompressionMethod::Deflated
            } else {
                zip::CompressionMethod::Stored
            };
            writer
                .start_file(
                    *name,
                    SimpleFileOptions::default().compression_method(method),
                )
                .unwrap();
            writer.write_all(data).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn a_checkpoint_passes_and_its_pickle_is_scanned() {
        let bytes = archive(&[
            ("model/data.pkl", STATE_DICT_P2, false),
            ("model/data/0", &[0; 16], false),
            ("model/data/1", &[0; 8], false),
            ("model/version", b"3\n", false),
        ]);
        let report = scan(Cursor::new(bytes)).unwrap();
        assert_eq!(report.entries, 4);
        assert_eq!(report.pickle.persistent_ids, 2);
        assert!(
            crate::detect(
                &archive(&[("model/data.pkl", STATE_DICT_P2, false)]),
                1 << 20
            ) == crate::ModelFormat::PytorchZip
        );
    }

    #[test]
    fn hostile_archives_are_refused_with_a_reason() {
        let bomb = vec![0u8; 8 * 1024 * 1024];
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "malicious pickle",
                archive(&[("m/data.pkl", OS_SYSTEM_P4, false)]),
                "posix.system",
            ),
            (
                "path traversal",
                archive(&[
                    ("m/data.pkl", STATE_DICT_P2, false),
                    ("../../etc/cron.d/x", b"x", false),
                ]),
                "outside the archive",
            ),
            (
                "absolute path",
                archive(&[("/etc/passwd", b"x", false)]),
                "outside the archive",
            ),
            (
                "zip bomb",
                archive(&[
                    ("m/data.pkl", STATE_DICT_P2, false),
                    ("m/data/0", &bomb, true),
                ]),
                "zip bomb",
            ),
            (
                "no pickle",
                archive(&[("m/data/0", b"x", false)]),
                "no data.pkl",
            ),
            (
                "two pickles",
                archive(&[
                    ("a/data.pkl", STATE_DICT_P2, false),
                    ("b/data.pkl", STATE_DICT_P2, false),
                ]),
                "more than one",
            ),
            ("not a zip", b"PK\x03\x04 truncated".to_vec(), "archive"),
        ];
        for (what, bytes, expected) in cases {
            let error = scan(Cursor::new(bytes)).expect_err(what).to_string();
            assert!(error.contains(expected), "{what}: {error}");
        }
    }
}

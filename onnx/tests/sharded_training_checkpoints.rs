//! A checkpoint as an FSDP job saves it through PyTorch's distributed checkpoint with the Hugging Face
//! storage writer (`save_sharded=True`): one safetensors file per rank, every tensor cut along its first
//! dimension as `torch.chunk` cuts it, each piece's offsets in `DCP_SHARDING_INFO`. kiln merges the
//! pieces back and converts the model.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::Tensor;
use kiln_onnx::checkpoint::Checkpoint;
use kiln_onnx::convert::{self, Plan, SourceFile};
use kiln_onnx::sample_models::{self, SampleModel};

/// `torch.chunk(t, ranks, dim=0)`: pieces of ceil(n / ranks) rows, the last smaller, none past the end.
fn chunks(rows: usize, ranks: usize) -> Vec<(usize, usize)> {
    let size = rows.div_ceil(ranks);
    (0..ranks)
        .map(|r| (r * size).min(rows))
        .map(|start| (start, (start + size).min(rows) - start))
        .collect()
}

fn write_rank_files(sample: &SampleModel, dir: &Path, ranks: usize) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec(&sample.config).unwrap(),
    )
    .unwrap();
    for rank in 0..ranks {
        let mut tensors = BTreeMap::new();
        let mut info = serde_json::Map::new();
        for (name, tensor) in &sample.tensors {
            let (start, length) = chunks(tensor.dim(0).unwrap(), ranks)[rank];
            if length == 0 {
                continue;
            }
            tensors.insert(
                name.clone(),
                tensor
                    .narrow(0, start, length)
                    .unwrap()
                    .contiguous()
                    .unwrap(),
            );
            let mut offsets = vec![0usize; tensor.rank()];
            offsets[0] = start;
            info.insert(
                name.clone(),
                serde_json::json!({ "saved_offsets": offsets }),
            );
        }
        let metadata = HashMap::from([
            (
                "DCP_SHARDING_INFO".to_owned(),
                serde_json::Value::Object(info).to_string(),
            ),
            ("DCP_VERSION".to_owned(), "1.0".to_owned()),
            ("format".to_owned(), "pt".to_owned()),
        ]);
        let name = format!("shard-{rank:05}-model-00001-of-00001.safetensors");
        safetensors::serialize_to_file(&tensors, Some(metadata), &dir.join(name)).unwrap();
    }
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    a.dims() == b.dims()
        && a.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            == b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn an_fsdp_checkpoint_saved_rank_by_rank_is_merged_and_converted() {
    let dir = tempfile::tempdir().unwrap();
    // 3 ranks do not divide the 50-row embedding: the pieces are uneven, as torch.chunk makes them.
    let sample = sample_models::gpt2(50, 16, 2, 2).unwrap();
    let folder = dir.path().join("checkpoint");
    write_rank_files(&sample, &folder, 3);

    let Plan::HuggingFace(hf) = convert::plan(&SourceFile::list(&folder).unwrap()).unwrap() else {
        panic!("not read as a Hugging Face checkpoint");
    };
    assert_eq!(hf.sources.len(), 4, "config.json and the three rank files");
    let merged = Checkpoint::open(&hf.weights).unwrap();
    for (name, original) in &sample.tensors {
        assert!(
            same(&merged.get(name).unwrap(), original),
            "{name} differs after merging"
        );
    }
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let converted = convert::convert_hf(&hf, &out).unwrap();
    assert!(
        converted.validation.rel_l2_error < 1e-4,
        "{:?}",
        converted.validation
    );
}

#[test]
fn a_missing_rank_is_refused_with_the_tensor_named() {
    let dir = tempfile::tempdir().unwrap();
    let sample = sample_models::gpt2(50, 16, 1, 2).unwrap();
    let folder = dir.path().join("checkpoint");
    write_rank_files(&sample, &folder, 3);
    std::fs::remove_file(folder.join("shard-00001-model-00001-of-00001.safetensors")).unwrap();
    let Plan::HuggingFace(hf) = convert::plan(&SourceFile::list(&folder).unwrap()).unwrap() else {
        panic!("not read as a Hugging Face checkpoint");
    };
    let error = Checkpoint::open(&hf.weights).err().unwrap().to_string();
    assert!(error.contains("sharded tensor"), "{error}");
    assert!(error.contains("pieces hold"), "{error}");
}

//! What a deployable variant carries when it is laid out on its own (`kiln pull --variant`, a variant's
//! OCI tag): its files, and the version's `config.json` beside its model, as an exported ONNX folder
//! (Optimum's layout) has it. Serving runtimes read the classes' names and the architecture there
//! (kiln-runner's labels, Optimum's ORTModel); without it a classifier pulled as a variant answers with
//! unnamed classes.

use crate::FilePath;

pub const CONFIG_FILE: &str = "config.json";

/// Of the files pushed, the index of the `config.json` a model's folder means: the shallowest (the one
/// at the top), the first by path among equals.
pub fn shallowest_config<'a>(pushed: impl IntoIterator<Item = &'a str>) -> Option<usize> {
    pushed
        .into_iter()
        .enumerate()
        .filter(|(_, path)| path.rsplit('/').next() == Some(CONFIG_FILE))
        .min_by_key(|&(_, path)| (path.matches('/').count(), path))
        .map(|(n, _)| n)
}

/// The version's `config.json` for a variant: its index among the files pushed and the path it takes
/// beside the variant's model (its first `.onnx` file). `None` when the version has none, the variant has
/// no model file, or the variant already has a file at that path (its own wins).
pub fn config_beside<'a>(
    pushed: impl IntoIterator<Item = &'a str>,
    variant: impl IntoIterator<Item = &'a str> + Clone,
) -> Option<(usize, FilePath)> {
    let config = shallowest_config(pushed)?;
    let model = variant.clone().into_iter().find(|p| p.ends_with(".onnx"))?;
    let at: FilePath = match model.rsplit_once('/') {
        Some((folder, _)) => format!("{folder}/{CONFIG_FILE}"),
        None => CONFIG_FILE.to_owned(),
    }
    .parse()
    .ok()?;
    let taken = variant.into_iter().any(|p| p == at.as_str());
    (!taken).then_some((config, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beside(pushed: &[&str], variant: &[&str]) -> Option<(String, String)> {
        config_beside(pushed.iter().copied(), variant.iter().copied())
            .map(|(n, at)| (pushed[n].to_owned(), at.to_string()))
    }

    #[test]
    fn a_variant_gets_the_versions_config_beside_its_model() {
        let pushed = [
            "nested/deeper/config.json",
            "config.json",
            "model.safetensors",
        ];
        let top = || "config.json".to_owned();
        assert_eq!(
            beside(&pushed, &["model.onnx"]),
            Some((top(), "config.json".into()))
        );
        assert_eq!(
            beside(&pushed, &["onnx/model.onnx", "onnx/model.onnx.data"]),
            Some((top(), "onnx/config.json".into()))
        );
        // A variant with its own config.json there keeps it; one with no model gets none.
        assert_eq!(
            beside(&pushed, &["onnx/model.onnx", "onnx/config.json"]),
            None
        );
        assert_eq!(beside(&pushed, &["weights.bin"]), None);
        assert_eq!(
            beside(&["model.safetensors", "config.json.bak"], &["model.onnx"]),
            None
        );
    }

    #[test]
    fn the_shallowest_config_is_the_models_and_ties_go_by_path() {
        assert_eq!(
            shallowest_config(["b/config.json", "a/config.json"]),
            Some(1)
        );
        assert_eq!(
            shallowest_config(["a/b/config.json", "z/config.json"]),
            Some(1)
        );
        assert_eq!(shallowest_config(["myconfig.json"]), None);
    }
}

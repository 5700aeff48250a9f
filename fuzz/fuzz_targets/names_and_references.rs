//! Names and references as URLs and command lines carry them: a namespace, model, version, alias, file
//! path, or a whole `NS/MODEL[:VERSION|@ALIAS]`. What parses must print back to what parses the same.
#![no_main]

use kiln_core::{AliasName, FilePath, ModelName, ModelRef, NamespaceName, VersionName};
use libfuzzer_sys::fuzz_target;

fn round_trips<T: std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug>(text: &str) {
    if let Ok(parsed) = text.parse::<T>() {
        let again: T = parsed
            .to_string()
            .parse()
            .unwrap_or_else(|_| panic!("{parsed:?} prints as something that does not parse"));
        assert_eq!(parsed, again);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    round_trips::<NamespaceName>(text);
    round_trips::<ModelName>(text);
    round_trips::<VersionName>(text);
    round_trips::<AliasName>(text);
    round_trips::<FilePath>(text);
    if let Ok(reference) = text.parse::<ModelRef>() {
        let _ = reference
            .to_string()
            .parse::<ModelRef>()
            .expect("a reference prints as a reference");
    }
});

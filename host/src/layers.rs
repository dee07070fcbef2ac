//! The module graph, as data, and the test that keeps the code to it: a
//! module names (`crate::…`) only modules of layers below its own, so no
//! import runs back up and there is no cycle. docs/architecture.md draws
//! the same graph.

/// Layers from the bottom up.
const LAYERS: &[&[&str]] = &[
    &[
        "clock",
        "journal",
        "metrics",
        "profiles",
        "query",
        "server_process",
        "telemetry",
        "tls",
    ],
    &["store"],
    &["writes"],
    &["engine"],
    &["error"],
    &["runtime", "offline"],
    &["api"],
    &["server"],
    &["cli"],
    &["bench"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every `crate::name` in `text`.
fn named(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices("crate::").map(move |(i, m)| {
        let rest = &text[i + m.len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        &rest[..end]
    })
}

fn sources(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn no_module_names_one_above_it() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.iter().next().unwrap().to_str().unwrap();
        let module = first.trim_end_matches(".rs");
        if matches!(module, "lib" | "main" | "layers") {
            continue;
        }
        let own = layer(module)
            .unwrap_or_else(|| panic!("module `{module}` is in no layer of layers.rs"));
        let text = std::fs::read_to_string(&file).unwrap();
        for dep in named(&text) {
            if let Some(theirs) = layer(dep)
                && dep != module
                && theirs >= own
            {
                wrong.push(format!("{} names crate::{dep}", relative.display()));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

//! The crate's public API, listed from rustdoc's JSON output and compared with a snapshot, so
//! that it changes only on purpose. After a deliberate change, review the new listing and accept
//! it with `INSTA_UPDATE=always cargo test -p genesys-auth --test public_api`.
//!
//! rustdoc's JSON output is unstable; `RUSTC_BOOTSTRAP=1` enables it on the stable toolchain the
//! workspace pins. The build goes to its own target directory so that it neither waits for nor
//! invalidates the test build.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value};

#[test]
fn the_public_api_changes_only_on_purpose() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = root.join("target/public-api");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&root)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", &target)
        .args([
            "rustdoc",
            "-q",
            "-p",
            "genesys-auth",
            "--lib",
            "--all-features",
            "--locked",
            "--",
            "-Zunstable-options",
            "--output-format",
            "json",
        ])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo rustdoc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read(target.join("doc/genesys_auth.json")).expect("rustdoc wrote JSON");
    let doc: Value = serde_json::from_slice(&json).expect("rustdoc JSON parses");
    let listing = Api::new(&doc).list();
    insta::assert_snapshot!("public_api", listing.join("\n"));
}

/// Walks the crate from its root module, as a user's `use` paths reach it.
struct Api<'a> {
    index: &'a Map<String, Value>,
    root: String,
    lines: BTreeSet<String>,
}

impl<'a> Api<'a> {
    fn new(doc: &'a Value) -> Self {
        Self {
            index: doc["index"].as_object().expect("an index"),
            root: doc["root"].to_string(),
            lines: BTreeSet::new(),
        }
    }

    fn list(mut self) -> Vec<String> {
        let root = self.root.clone();
        self.module("genesys_auth", &root);
        self.lines.into_iter().collect()
    }

    fn item(&self, id: &Value) -> Option<&'a Value> {
        self.index.get(&id.to_string())
    }

    fn module(&mut self, path: &str, id: &str) {
        let Some(module) = self.index.get(id) else {
            return;
        };
        for child in module["inner"]["module"]["items"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(item) = self.item(child) else {
                continue;
            };
            if let Some(u) = item["inner"].get("use") {
                let name = u["name"].as_str().unwrap_or("?");
                let full = format!("{path}::{name}");
                match u.get("id").and_then(|t| self.item(t)) {
                    // Re-exported from this crate: list the item under its public path.
                    Some(target) => self.entry(&full, target),
                    None => {
                        self.lines.insert(format!(
                            "pub use {full} = {}",
                            u["source"].as_str().unwrap_or("?")
                        ));
                    }
                }
                continue;
            }
            let name = item["name"].as_str().unwrap_or("?");
            self.entry(&format!("{path}::{name}"), item);
        }
    }

    fn entry(&mut self, path: &str, item: &Value) {
        let (kind, inner) = match item["inner"].as_object().and_then(|o| o.iter().next()) {
            Some((k, v)) => (k.as_str(), v),
            None => return,
        };
        let attrs = non_exhaustive(item);
        match kind {
            "module" => {
                self.lines.insert(format!("pub mod {path}"));
                let id = item["id"].to_string();
                self.module(path, &id);
            }
            "function" => {
                self.lines.insert(format!("pub {}", function(path, inner)));
            }
            "struct" => {
                self.lines.insert(format!(
                    "{attrs}pub struct {path}{}",
                    generics(&inner["generics"])
                ));
                let fields = &inner["kind"]["plain"]["fields"];
                for f in fields.as_array().into_iter().flatten() {
                    if let Some(field) = self.item(f) {
                        self.lines.insert(format!(
                            "pub {path}.{}: {}",
                            field["name"].as_str().unwrap_or("?"),
                            ty(&field["inner"]["struct_field"])
                        ));
                    }
                }
                self.impls(path, inner);
            }
            "enum" => {
                self.lines.insert(format!(
                    "{attrs}pub enum {path}{}",
                    generics(&inner["generics"])
                ));
                for v in inner["variants"].as_array().into_iter().flatten() {
                    if let Some(variant) = self.item(v) {
                        self.variant(path, variant);
                    }
                }
                self.impls(path, inner);
            }
            "trait" => {
                self.lines.insert(format!("pub trait {path}"));
                for m in inner["items"].as_array().into_iter().flatten() {
                    if let Some(method) = self.item(m)
                        && let Some(f) = method["inner"].get("function")
                    {
                        let name = method["name"].as_str().unwrap_or("?");
                        self.lines.insert(function(&format!("{path}::{name}"), f));
                    }
                }
            }
            "constant" => {
                self.lines
                    .insert(format!("pub const {path}: {}", ty(&inner["type"])));
            }
            "static" => {
                self.lines
                    .insert(format!("pub static {path}: {}", ty(&inner["type"])));
            }
            "type_alias" => {
                self.lines.insert(format!(
                    "pub type {path}{} = {}",
                    generics(&inner["generics"]),
                    ty(&inner["type"])
                ));
            }
            other => {
                self.lines.insert(format!("pub {other} {path}"));
            }
        }
    }

    fn variant(&mut self, path: &str, variant: &Value) {
        let name = variant["name"].as_str().unwrap_or("?");
        let attrs = non_exhaustive(variant);
        let kind = &variant["inner"]["variant"]["kind"];
        let fields: Vec<String> = match kind.as_object().and_then(|o| o.iter().next()) {
            Some((k, v)) if k == "struct" => v["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| self.item(f))
                .map(|f| {
                    format!(
                        "{}: {}",
                        f["name"].as_str().unwrap_or("?"),
                        ty(&f["inner"]["struct_field"])
                    )
                })
                .collect(),
            Some((k, v)) if k == "tuple" => v
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    self.item(f)
                        .map(|f| ty(&f["inner"]["struct_field"]))
                        .unwrap_or_else(|| "_".into())
                })
                .collect(),
            _ => Vec::new(),
        };
        let shape = match kind.as_object().and_then(|o| o.keys().next()) {
            Some(k) if k == "struct" => format!(" {{ {} }}", fields.join(", ")),
            Some(k) if k == "tuple" => format!("({})", fields.join(", ")),
            _ => String::new(),
        };
        self.lines
            .insert(format!("{attrs}pub {path}::{name}{shape}"));
    }

    /// Inherent methods, and the traits implemented by hand or derived (not blanket or auto
    /// impls, which follow from the rest).
    fn impls(&mut self, path: &str, inner: &Value) {
        for i in inner["impls"].as_array().into_iter().flatten() {
            let Some(imp) = self.item(i) else { continue };
            let imp = &imp["inner"]["impl"];
            if imp["is_synthetic"] == true || !imp["blanket_impl"].is_null() {
                continue;
            }
            match imp.get("trait").filter(|t| !t.is_null()) {
                Some(t) => {
                    let trait_path = t["path"].as_str().unwrap_or("?");
                    let name = trait_path.rsplit("::").next().unwrap_or(trait_path);
                    self.lines
                        .insert(format!("impl {name}{} for {path}", args(&t["args"])));
                }
                None => {
                    for m in imp["items"].as_array().into_iter().flatten() {
                        let Some(method) = self.item(m) else { continue };
                        if method["visibility"] != "public" {
                            continue;
                        }
                        let name = method["name"].as_str().unwrap_or("?");
                        if let Some(f) = method["inner"].get("function") {
                            self.lines
                                .insert(format!("pub {}", function(&format!("{path}::{name}"), f)));
                        } else if let Some(c) = method["inner"].get("assoc_const") {
                            self.lines
                                .insert(format!("pub const {path}::{name}: {}", ty(&c["type"])));
                        }
                    }
                }
            }
        }
    }
}

fn non_exhaustive(item: &Value) -> &'static str {
    let attrs = item["attrs"].to_string();
    if attrs.contains("non_exhaustive") {
        "#[non_exhaustive] "
    } else {
        ""
    }
}

fn function(path: &str, f: &Value) -> String {
    let header = &f["header"];
    let mut out = String::new();
    if header["is_const"] == true {
        out.push_str("const ");
    }
    if header["is_async"] == true {
        out.push_str("async ");
    }
    if header["is_unsafe"] == true {
        out.push_str("unsafe ");
    }
    let inputs: Vec<String> = f["sig"]["inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let name = p[0].as_str().unwrap_or("_");
            let t = ty(&p[1]);
            match (name, t.as_str()) {
                ("self", "Self") => "self".into(),
                ("self", "&Self") => "&self".into(),
                ("self", "&mut Self") => "&mut self".into(),
                _ => format!("{name}: {t}"),
            }
        })
        .collect();
    out.push_str(&format!(
        "fn {path}{}({})",
        generics(&f["generics"]),
        inputs.join(", ")
    ));
    if !f["sig"]["output"].is_null() {
        out.push_str(&format!(" -> {}", ty(&f["sig"]["output"])));
    }
    out
}

fn generics(g: &Value) -> String {
    let params: Vec<String> = g["params"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["kind"]["type"]["is_synthetic"] != true)
        .map(|p| {
            let name = p["name"].as_str().unwrap_or("?").to_owned();
            let bounds = bounds(&p["kind"]["type"]["bounds"]);
            if bounds.is_empty() {
                name
            } else {
                format!("{name}: {bounds}")
            }
        })
        .collect();
    if params.is_empty() {
        String::new()
    } else {
        format!("<{}>", params.join(", "))
    }
}

fn bounds(b: &Value) -> String {
    b.as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            if let Some(t) = b.get("trait_bound") {
                let p = t["trait"]["path"].as_str().unwrap_or("?");
                format!("{p}{}", args(&t["trait"]["args"]))
            } else if let Some(l) = b.get("outlives") {
                l.as_str().unwrap_or("?").to_owned()
            } else {
                "?".into()
            }
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

fn args(a: &Value) -> String {
    if let Some(ab) = a.get("angle_bracketed") {
        let mut parts: Vec<String> = ab["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                if let Some(t) = x.get("type") {
                    ty(t)
                } else if let Some(l) = x.get("lifetime") {
                    l.as_str().unwrap_or("?").to_owned()
                } else {
                    "_".into()
                }
            })
            .collect();
        for c in ab["constraints"].as_array().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or("?");
            match c["binding"].get("equality").and_then(|e| e.get("type")) {
                Some(t) => parts.push(format!("{name} = {}", ty(t))),
                None => parts.push(format!("{name}: {}", bounds(&c["binding"]["constraint"]))),
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("<{}>", parts.join(", "))
        }
    } else if let Some(p) = a.get("parenthesized") {
        let inputs: Vec<String> = p["inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(ty)
            .collect();
        let out = if p["output"].is_null() {
            String::new()
        } else {
            format!(" -> {}", ty(&p["output"]))
        };
        format!("({}){out}", inputs.join(", "))
    } else {
        String::new()
    }
}

/// A type as source code would spell it, near enough to see a change.
fn ty(t: &Value) -> String {
    let Some((kind, v)) = t.as_object().and_then(|o| o.iter().next()) else {
        return "?".into();
    };
    match kind.as_str() {
        "resolved_path" => {
            let p = v["path"].as_str().unwrap_or("?");
            let name = p.rsplit("::").next().unwrap_or(p);
            format!("{name}{}", args(&v["args"]))
        }
        "generic" | "primitive" => v.as_str().unwrap_or("?").to_owned(),
        "borrowed_ref" => {
            let lt = v["lifetime"]
                .as_str()
                .map(|l| format!("{l} "))
                .unwrap_or_default();
            let m = if v["is_mutable"] == true { "mut " } else { "" };
            format!("&{lt}{m}{}", ty(&v["type"]))
        }
        "slice" => format!("[{}]", ty(v)),
        "array" => format!("[{}; {}]", ty(&v["type"]), v["len"].as_str().unwrap_or("?")),
        "tuple" => {
            let parts: Vec<String> = v.as_array().into_iter().flatten().map(ty).collect();
            format!("({})", parts.join(", "))
        }
        "impl_trait" => format!("impl {}", bounds(v)),
        "dyn_trait" => {
            let traits: Vec<String> = v["traits"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    let p = t["trait"]["path"].as_str().unwrap_or("?");
                    format!("{p}{}", args(&t["trait"]["args"]))
                })
                .collect();
            let lt = v["lifetime"]
                .as_str()
                .map(|l| format!(" + {l}"))
                .unwrap_or_default();
            format!("dyn {}{lt}", traits.join(" + "))
        }
        "qualified_path" => format!(
            "<{} as {}>::{}",
            ty(&v["self_type"]),
            v["trait"]["path"].as_str().unwrap_or("?"),
            v["name"].as_str().unwrap_or("?")
        ),
        "raw_pointer" => format!(
            "*{} {}",
            if v["is_mutable"] == true {
                "mut"
            } else {
                "const"
            },
            ty(&v["type"])
        ),
        "function_pointer" => "fn(..)".into(),
        other => other.to_owned(),
    }
}

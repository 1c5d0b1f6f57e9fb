//! `--jq EXPR`: a jq filter over the response, through the jaq crates (no shell-out, no jq
//! needed). Strings are printed raw, as `gh api --jq` prints them; other values as JSON.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

use crate::exit::{CliError, Exit};

/// Runs `expr` over the JSON `input` and returns one line per output value.
pub fn run(expr: &str, input: &[u8]) -> Result<Vec<String>, CliError> {
    let usage = |m: String| CliError::new(Exit::Usage, m);
    let input = jaq_json::read::parse_single(input)
        .map_err(|_| usage("--jq needs a JSON answer, and this one is not JSON".into()))?;
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let program = File {
        code: expr,
        path: (),
    };
    let modules = loader
        .load(&arena, program)
        .map_err(|_| usage(format!("--jq `{expr}` is not a valid jq expression")))?;
    let filter = Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|_| usage(format!("--jq `{expr}` names a filter that does not exist")))?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    let mut lines = Vec::new();
    for v in filter.id.run((ctx, input)).map(unwrap_valr) {
        let v = v.map_err(|e| usage(format!("--jq `{expr}` failed: {e}")))?;
        let text = v.to_string();
        lines.push(match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::String(s)) => s,
            _ => text,
        });
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_print_strings_raw_and_other_values_as_json() {
        let input = br#"{"entities":[{"name":"a","n":1},{"name":"b","n":2}]}"#;
        assert_eq!(run(".entities[].name", input).unwrap(), ["a", "b"]);
        assert_eq!(run("[.entities[].n] | add", input).unwrap(), ["3"]);
        assert_eq!(run(".entities | length", input).unwrap(), ["2"]);
        assert_eq!(run("map(.n)", br#"[{"n":1}]"#).unwrap(), ["[1]"]);
        for bad in [".[", "nosuchfilter", ".entities | error(\"x\")"] {
            assert_eq!(run(bad, input).unwrap_err().exit, Exit::Usage, "{bad}");
        }
        assert!(run(".", b"not json").is_err());
    }
}

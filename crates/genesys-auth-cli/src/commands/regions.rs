//! `genesys-auth regions`: the table of regions and accepted spellings.

use genesys_auth::REGIONS;
use serde_json::json;

use crate::cli::JsonArg;
use crate::output::{print_json, print_line, table};

pub fn run(args: JsonArg) {
    if args.json {
        let rows: Vec<_> = REGIONS
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "domain": r.domain,
                    "api_host": r.api_host(),
                    "login_host": r.login_host(),
                    "location": r.location,
                    "short_codes": r.short_codes,
                    "host_code": r.host_code(),
                })
            })
            .collect();
        print_json(&json!(rows));
        return;
    }
    let mut rows = vec![[
        "NAME".to_owned(),
        "DOMAIN".into(),
        "API HOST".into(),
        "LOGIN HOST".into(),
        "LOCATION".into(),
        "SHORT".into(),
    ]];
    rows.extend(REGIONS.iter().map(|r| {
        [
            r.name.to_owned(),
            r.domain.to_owned(),
            r.api_host(),
            r.login_host(),
            r.location.to_owned(),
            r.host_code()
                .into_iter()
                .chain(r.short_codes.iter().copied())
                .collect::<Vec<_>>()
                .join(","),
        ]
    }));
    for line in table(&rows) {
        print_line(&line);
    }
}

//! Region spellings, table-driven; errors; and a property test that no input panics.

use genesys_auth::{REGIONS, Region, RegionError};
use proptest::prelude::*;

fn name(input: &str) -> String {
    match Region::parse(input) {
        Ok(Region::Known(info)) => info.name.to_owned(),
        Ok(Region::Custom(url)) => format!("custom {url}"),
        Ok(r @ Region::Gateway { .. }) => format!("gateway {r}"),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn the_table_has_the_18_regions_with_distinct_names_and_domains() {
    assert_eq!(REGIONS.len(), 18);
    let mut names: Vec<_> = REGIONS.iter().map(|r| r.name).collect();
    names.dedup();
    assert_eq!(names.len(), 18);
    let eu = REGIONS.iter().find(|r| r.name == "eu-west-1").unwrap();
    assert_eq!(eu.api_host(), "api.mypurecloud.ie");
    assert_eq!(eu.login_host(), "login.mypurecloud.ie");
}

#[test]
fn every_spelling_of_every_region_resolves_to_it() {
    for r in REGIONS {
        let spellings = [
            r.name.to_owned(),
            r.name.replace('-', "_"),
            r.name.to_uppercase(),
            format!("  {}  ", r.name),
            r.domain.to_owned(),
            format!("api.{}", r.domain),
            format!("login.{}", r.domain),
            format!("LOGIN.{}", r.domain.to_uppercase()),
            format!("https://api.{}/", r.domain),
            format!("https://login.{}", r.domain),
        ];
        for s in spellings {
            assert_eq!(name(&s), r.name, "spelling {s:?}");
        }
    }
}

/// Genesys' own short host names, as its domains spell them, name their regions; one letter
/// off gets a suggestion.
#[test]
fn genesys_short_host_names_map_to_their_regions() {
    for (code, region) in [
        ("apne2", "ap-northeast-2"),
        ("cac1", "ca-central-1"),
        ("EUW2", "eu-west-2"),
        ("aps1", "ap-south-1"),
        ("usw2", "us-west-2"),
        ("use2", "us-east-2"),
        ("edee1", "eusc-de-east-1"),
    ] {
        assert_eq!(name(code), region, "{code}");
    }
    let with_code = genesys_auth::REGIONS
        .iter()
        .filter(|r| r.host_code().is_some())
        .count();
    assert_eq!(with_code, 13, "every domain but the five mypurecloud ones");
    let e = Region::parse("usw22").unwrap_err().to_string();
    assert!(e.contains("did you mean `usw2`"), "{e}");
}

#[test]
fn seed_short_codes_map_to_their_regions() {
    let table = [
        ("us", "us-east-1"),
        ("eu", "eu-west-1"),
        ("au", "ap-southeast-2"),
        ("jp", "ap-northeast-1"),
        ("ca", "ca-central-1"),
        ("in", "ap-south-1"),
        ("br", "sa-east-1"),
        ("sg", "ap-southeast-1"),
        ("kr", "ap-northeast-2"),
        ("ae", "me-central-1"),
        ("EU", "eu-west-1"),
        // The seed tutorial's invented hosts, copied from its URLs.
        ("https://api.eu.mypurecloud.com", "eu-west-1"),
        ("api.jp.mypurecloud.com", "ap-northeast-1"),
    ];
    for (input, expected) in table {
        assert_eq!(name(input), expected, "{input}");
    }
}

#[test]
fn urls_point_at_the_login_host_for_tokens_and_the_api_host_for_calls() {
    let r = Region::parse("eu").unwrap();
    assert_eq!(r.token_url(), "https://login.mypurecloud.ie/oauth/token");
    assert_eq!(r.api_base_url(), "https://api.mypurecloud.ie");
    assert_eq!(Region::default().name(), "us-east-1");
}

#[test]
fn custom_base_urls_serve_both_and_http_only_on_loopback() {
    for ok in [
        "http://127.0.0.1:8080",
        "http://localhost:9000/",
        "http://[::1]:8080",
        "https://gateway.example.com",
        "https://gateway.example.com/genesys/",
    ] {
        let r = Region::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(r.name(), "custom");
        assert_eq!(r.api_base_url(), r.login_base_url());
        assert!(!r.api_base_url().ends_with('/'));
        assert!(r.token_url().ends_with("/oauth/token"));
    }
    let http = Region::parse("http://gateway.example.com").unwrap_err();
    assert!(matches!(http, RegionError::BadUrl { .. }));
    assert!(http.to_string().contains("loopback"), "{http}");
    let genesys_http = Region::parse("http://api.mypurecloud.ie").unwrap_err();
    assert!(genesys_http.to_string().contains("https"), "{genesys_http}");
    for bad in [
        "ftp://127.0.0.1",
        "https://user:pw@gateway.example.com",
        "https://x.example.com/?a=1",
    ] {
        assert!(
            matches!(Region::parse(bad), Err(RegionError::BadUrl { .. })),
            "{bad}"
        );
    }
}

#[test]
fn typos_get_a_suggestion_and_the_list_of_names() {
    let e = Region::parse("eu-wst-1").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("did you mean `eu-west-1`?"), "{msg}");
    assert!(
        msg.contains("ap-northeast-3") && msg.contains("eusc-de-east-1"),
        "{msg}"
    );
    let e = Region::parse("mypurecloud.i").unwrap_err().to_string();
    assert!(e.contains("did you mean `mypurecloud.ie`?"), "{e}");
    let far = Region::parse("mars-base-7").unwrap_err();
    assert!(
        matches!(
            far,
            RegionError::Unknown {
                suggestion: None,
                ..
            }
        ),
        "{far:?}"
    );
    assert!(matches!(Region::parse("   "), Err(RegionError::Empty)));
}

#[test]
fn za_says_there_is_no_region_there() {
    let e = Region::parse("za").unwrap_err().to_string();
    assert!(e.contains("no region in South Africa"), "{e}");
    assert!(e.contains("us-east-1"), "{e}");
}

proptest! {
    #[test]
    fn no_input_panics(s in "\\PC{0,64}") {
        let _ = Region::parse(&s);
    }

    /// A password in a URL's userinfo never reaches an error or a lookalike warning.
    #[test]
    fn a_url_password_is_never_echoed(
        scheme in "(https?|ftp|)",
        user in "[a-z]{0,6}",
        host in "[a-z0-9.\\[\\]:-]{0,24}",
        rest in "[a-z/?#@%:]{0,10}",
    ) {
        let input = format!("{scheme}://{user}:PW-9f8e7d@{host}{rest}");
        let shown = match Region::parse(&input) {
            Ok(r) => format!("{r} {r:?} {:?}", r.lookalike_warning()),
            Err(e) => format!("{e} {e:?}"),
        };
        prop_assert!(!shown.contains("PW-9f8e7d"), "{}", shown);
    }

    #[test]
    fn lookalike_checks_never_panic(host in "[a-z0-9.-]{1,40}") {
        if let Ok(r) = Region::parse(&format!("https://{host}")) {
            let _ = r.lookalike_warning();
        }
    }

    #[test]
    fn no_url_like_input_panics(host in "[a-z0-9.:\\[\\]-]{0,30}", path in "[a-z/?#@%]{0,10}") {
        let _ = Region::parse(&format!("http://{host}{path}"));
        let _ = Region::parse(&format!("https://{host}{path}"));
    }
}

#[test]
fn a_gateway_has_separate_login_and_api_bases_checked_like_custom_urls() {
    let g = Region::gateway(
        "https://gw.example.com/genesys-login/",
        "https://gw.example.com/genesys-api",
    )
    .unwrap();
    assert_eq!(
        g.token_url(),
        "https://gw.example.com/genesys-login/oauth/token"
    );
    assert_eq!(g.api_base_url(), "https://gw.example.com/genesys-api");
    assert_eq!(g.login_host(), "gw.example.com");
    assert_eq!(g.name(), "custom");
    for (login, api) in [
        ("http://gw.example.com/l", "https://gw.example.com/a"),
        (
            "https://u:GW-PASSWORD@gw.example.com/l",
            "https://gw.example.com/a",
        ),
        ("gw.example.com/l", "https://gw.example.com/a"),
    ] {
        let e = Region::gateway(login, api).unwrap_err().to_string();
        assert!(!e.contains("GW-PASSWORD"), "{e}");
    }
    let w = Region::gateway(
        "https://login.mypurecloud.com.evil.com/l",
        "https://gw.example.com/a",
    )
    .unwrap()
    .lookalike_warning();
    assert!(w.is_some());
}

//! Filters for templates and answer expressions alike (both compile into the
//! one environment [`super::new_env`] makes): the digests and encodings PBX
//! logins and signatures are built from (an md5 of a challenge, an HMAC over
//! a nonce, base64 credentials), and `from_json` for JSON that an answer
//! carries inside a string field. Digests are of the value's UTF-8 bytes and
//! come out as lower-case hex; `hmac_sha256`/`hmac_sha1` take the key and,
//! optionally, `'base64'` for a base64 signature (as Twilio signs).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use minijinja::{Environment, Error, ErrorKind, Value};
use sha2::Digest as _;

/// How deeply JSON read by `from_json` may nest: as deeply as a PBX answer
/// may (its text comes from one), so nothing downstream recurses further.
pub const FROM_JSON_DEPTH: usize = 64;

pub(super) fn add(env: &mut Environment<'static>) {
    env.add_filter("md5", |v: String| hex(&md5::Md5::digest(v.as_bytes())));
    env.add_filter("sha256", |v: String| hex(&sha2::Sha256::digest(v.as_bytes())));
    env.add_filter("base64", |v: String| base64::engine::general_purpose::STANDARD.encode(v.as_bytes()));
    env.add_filter("hmac_sha256", |v: String, key: String, encoding: Option<String>| {
        let mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).map_err(invalid)?;
        signature(mac, &v, encoding.as_deref())
    });
    env.add_filter("hmac_sha1", |v: String, key: String, encoding: Option<String>| {
        let mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).map_err(invalid)?;
        signature(mac, &v, encoding.as_deref())
    });
    env.add_filter("from_json", from_json);
    env.add_filter("pick", pick);
    super::signing::add(env);
}

/// What [`pick`]'s refusal says, so the load-time try (whose sample
/// extension need not be in the admin's map) can tell it apart.
pub(super) const NOT_IN_MAP: &str = "is not a key of";

/// `{{ extension | pick(users, 'users') }}`: the value the admin's map
/// gives for this key, for APIs that name users by id rather than by
/// extension. A key the map lacks refuses the request (`invalid_request`,
/// nothing sent, not even a login), like a desk phone missing from
/// `phones`; `name` is the map's name in `vars`, for the message.
fn pick(key: Value, map: Value, name: Option<String>) -> Result<Value, Error> {
    let found = map.get_item(&key).ok().filter(|v| !v.is_undefined() && !v.is_none());
    found.ok_or_else(|| {
        let name = name.unwrap_or_else(|| "the map".into());
        Error::new(ErrorKind::InvalidOperation, format!("\"{key}\" {NOT_IN_MAP} `{name}`"))
    })
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidOperation, e.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn signature(mut mac: impl Mac, v: &str, encoding: Option<&str>) -> Result<String, Error> {
    mac.update(v.as_bytes());
    let bytes = mac.finalize().into_bytes();
    match encoding.unwrap_or("hex") {
        "hex" => Ok(hex(&bytes)),
        "base64" => Ok(base64::engine::general_purpose::STANDARD.encode(bytes)),
        other => Err(invalid(format!("encoding {other:?}: use 'hex' (the default) or 'base64'"))),
    }
}

fn from_json(v: String) -> Result<Value, Error> {
    if json_depth_exceeds(&v, FROM_JSON_DEPTH) {
        return Err(invalid(format!("from_json: the JSON nests more than {FROM_JSON_DEPTH} levels deep")));
    }
    let parsed: serde_json::Value = serde_json::from_str(&v).map_err(|e| invalid(format!("from_json: {e}")))?;
    Ok(Value::from(minijinja::value::Serde(parsed)))
}

/// Whether brackets outside strings nest deeper than `max`: one pass, no
/// recursion, so untrusted JSON is measured before anything parses it.
pub fn json_depth_exceeds(raw: &str, max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in raw.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    /// `expr` evaluated in the shared environment, with `v` as `v`.
    fn eval(expr: &str, v: &str) -> Result<String, String> {
        let env = super::super::new_env();
        let e = env.compile_expression(expr).map_err(|e| e.to_string())?;
        e.eval(minijinja::context! { v => v }).map(|r| r.to_string()).map_err(|e| e.to_string())
    }

    #[test]
    fn digests_and_base64_match_their_standard_vectors() {
        // RFC 1321 appendix A.5, FIPS 180-2 appendix B.1, RFC 4648 section 10.
        let cases = [
            ("v | md5", "", "d41d8cd98f00b204e9800998ecf8427e"),
            ("v | md5", "abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("v | md5", "message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("v | sha256", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ("v | sha256", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("v | base64", "foobar", "Zm9vYmFy"),
            ("v | base64", "fo", "Zm8="),
            ("v | base64", "", ""),
        ];
        for (expr, v, want) in cases {
            assert_eq!(eval(expr, v).as_deref(), Ok(want), "{expr} on {v:?}");
        }
        // What digest-style logins build: md5 of "user:realm:password".
        assert_eq!(eval("(v ~ ':standin:' ~ 'pw') | md5", "admin"), eval("v | md5", "admin:standin:pw"));
    }

    #[test]
    fn pick_gives_the_maps_value_or_refuses_a_key_it_lacks() {
        let env = super::super::new_env();
        let map: std::collections::BTreeMap<&str, &str> = [("201", "uuid-201")].into();
        let users = minijinja::context! { users => map };
        let pick = |key: &str| {
            let source = format!("{key:?} | pick(users, 'users')");
            let e = env.compile_expression(&source).map_err(|e| e.to_string())?;
            e.eval(&users).map(|r| r.to_string()).map_err(|e| e.to_string())
        };
        assert_eq!(pick("201").as_deref(), Ok("uuid-201"));
        let refused = pick("202").unwrap_err();
        assert!(refused.contains(&format!("\"202\" {} `users`", super::NOT_IN_MAP)), "{refused}");
    }

    #[test]
    fn hmacs_match_rfc_4231_and_rfc_2202() {
        // RFC 4231 test case 2 (HMAC-SHA-256) and RFC 2202 test case 2 (HMAC-SHA-1):
        // key "Jefe", data "what do ya want for nothing?".
        let data = "what do ya want for nothing?";
        assert_eq!(
            eval("v | hmac_sha256('Jefe')", data).as_deref(),
            Ok("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        assert_eq!(eval("v | hmac_sha1('Jefe')", data).as_deref(), Ok("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"));
        assert_eq!(
            eval("v | hmac_sha1('Jefe', 'hex')", data).as_deref(),
            Ok("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        );
        // The same signature in base64 (as Twilio's X-Twilio-Signature is written).
        assert_eq!(eval("v | hmac_sha1('Jefe', 'base64')", data).as_deref(), Ok("7/zfauXrL6LSdBbV8YTfnCWafHk="));
        assert_eq!(
            eval("v | hmac_sha256('Jefe', 'base64')", data).as_deref(),
            Ok("W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=")
        );
        // RFC 4231 and RFC 2202 test case 1: a key of twenty 0x0b bytes, "Hi There".
        let env = super::super::new_env();
        let sign = |expr: &str| {
            let e = env.compile_expression(expr).unwrap();
            e.eval(minijinja::context! { v => "Hi There", k => "\u{0b}".repeat(20) }).unwrap().to_string()
        };
        assert_eq!(sign("v | hmac_sha256(k)"), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
        assert_eq!(sign("v | hmac_sha1(k)"), "b617318655057264e28bc0b6fb378c8ef146be00");
        let bad = eval("v | hmac_sha1('k', 'hex64')", "x").unwrap_err();
        assert!(bad.contains("use 'hex' (the default) or 'base64'"), "{bad}");
    }

    #[test]
    fn from_json_reads_json_inside_a_string_and_refuses_deep_or_broken_json() {
        assert_eq!(eval("(v | from_json).a.b", r#"{"a": {"b": 7}}"#).as_deref(), Ok("7"));
        assert_eq!(eval("(v | from_json)[1]", "[1, \"two\"]").as_deref(), Ok("two"));
        let broken = eval("v | from_json", "{\"a\": ").unwrap_err();
        assert!(broken.contains("from_json: "), "{broken}");
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(eval("v | from_json", &deep).unwrap_err().contains("more than 64 levels"));
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(eval("v | from_json", &ok).is_ok());
        assert!(!super::json_depth_exceeds(r#"{"a": "[[[[[["}"#, 2), "brackets in strings do not count");
    }
}

//! Public-key filters, for cloud APIs that sign with keys rather than a
//! shared secret (aws-lc-rs, the crypto library rustls already uses):
//!
//! - `ed25519_verify(public_key, signature)`: whether `signature` (base64)
//!   is the Ed25519 signature of the text by `public_key` (base64 of the 32
//!   raw key bytes, or of its DER SubjectPublicKeyInfo), as Telnyx signs
//!   webhooks. Anything unreadable is `false`, never an error: its inputs
//!   are a notification's headers, which anyone can send.
//! - `is_recent(max_seconds)`: whether a Unix time (seconds, as text or a
//!   number) is within `max_seconds` of now, either way: a signed webhook's
//!   timestamp checked against replays. Unreadable is `false`.
//! - `jwt_rs256(private_key)`: the claims (a map) as a JWT signed RS256
//!   with `private_key` (PEM, PKCS #8 or PKCS #1), as Vonage wants per
//!   request. `iat` (now), `jti` (unique) and `exp` (`iat` + 15 minutes)
//!   are added unless the claims give them, so each rendering is fresh. An
//!   unreadable key refuses the request (nothing is sent) with the reason;
//!   the one render tried when a profile loads ([`trying`]) gives a
//!   placeholder instead, so a preset loads with sample values (a dry run
//!   shows a broken key).

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use minijinja::{Environment, Error, ErrorKind, Value};

thread_local! {
    /// True while the load-time try renders (on this thread, synchronously).
    static TRYING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` as the load-time try of a template: a key the filters cannot
/// read gives a placeholder rather than an error, since the profile's
/// variables may be samples. Nothing rendered here is ever sent.
pub(super) fn trying<T>(f: impl FnOnce() -> T) -> T {
    TRYING.with(|t| t.set(true));
    let out = f();
    TRYING.with(|t| t.set(false));
    out
}

/// What the load-time try renders for a JWT whose key cannot be read.
const UNSIGNED_PLACEHOLDER: &str = "unsigned.sample.jwt";

/// How long a JWT lives when the claims give no `exp`.
pub const JWT_LIFETIME_SECS: u64 = 15 * 60;

pub(super) fn add(env: &mut Environment<'static>) {
    env.add_filter("ed25519_verify", |message: String, public_key: String, signature: String| {
        ed25519_verify(&message, &public_key, &signature)
    });
    env.add_filter("jwt_rs256", jwt_rs256);
    env.add_filter("is_recent", |at: Value, max_seconds: u64| is_recent(&at, max_seconds, unix_now()));
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn is_recent(at: &Value, max_seconds: u64, now: u64) -> bool {
    let at = match at.as_str() {
        Some(text) => text.trim().parse::<u64>().ok(),
        None => u64::try_from(at.clone()).ok(),
    };
    at.is_some_and(|at| at.abs_diff(now) <= max_seconds)
}

/// Ed25519 public keys as DER SubjectPublicKeyInfo start with these 12 bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

pub fn ed25519_verify(message: &str, public_key: &str, signature: &str) -> bool {
    let (Ok(key), Ok(sig)) = (STANDARD.decode(public_key.trim()), STANDARD.decode(signature.trim())) else {
        return false;
    };
    let key = match key.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
        Some(raw) => raw,
        None => &key[..],
    };
    key.len() == 32
        && signature::UnparsedPublicKey::new(&signature::ED25519, key).verify(message.as_bytes(), &sig).is_ok()
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// The DER inside a PEM block, and whether it is PKCS #1 (`RSA PRIVATE KEY`).
/// Literal `\n` (a key kept on one line in an environment variable) counts
/// as a line break.
fn pem_der(pem: &str) -> Option<(Vec<u8>, bool)> {
    let pem = pem.replace("\\n", "\n");
    let pkcs1 = pem.contains("-----BEGIN RSA PRIVATE KEY-----");
    let body: String = pem.lines().map(str::trim).filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().concat();
    let der = STANDARD.decode(body).ok()?;
    (!der.is_empty()).then_some((der, pkcs1))
}

fn rsa_key(pem: &str) -> Result<signature::RsaKeyPair, Error> {
    let (der, pkcs1) = pem_der(pem).ok_or_else(|| invalid("jwt_rs256: the private key is not a PEM block"))?;
    let key = if pkcs1 { signature::RsaKeyPair::from_der(&der) } else { signature::RsaKeyPair::from_pkcs8(&der) };
    key.map_err(|e| invalid(format!("jwt_rs256: the private key is not an RSA private key: {e}")))
}

fn jwt_rs256(claims: Value, private_key: String) -> Result<String, Error> {
    let key = match rsa_key(&private_key) {
        Ok(k) => k,
        Err(_) if TRYING.with(|t| t.get()) => return Ok(UNSIGNED_PLACEHOLDER.into()),
        Err(e) => return Err(e),
    };
    let mut claims = match serde_json::to_value(&claims) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return Err(invalid("jwt_rs256: the claims must be a map, e.g. {'application_id': application_id}")),
    };
    let now = unix_now();
    claims.entry("iat").or_insert(now.into());
    claims.entry("jti").or_insert(ulid::Ulid::generate().to_string().into());
    claims.entry("exp").or_insert((now + JWT_LIFETIME_SECS).into());
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::Value::Object(claims).to_string());
    let signed = format!("{header}.{payload}");
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(&signature::RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), signed.as_bytes(), &mut sig)
        .map_err(|_| invalid("jwt_rs256: signing failed"))?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// Whether `jwt` is signed RS256 by the key pair whose private key is
/// `private_key` (PEM), and its claims, for a stand-in that checks what a
/// gateway signed.
pub fn jwt_rs256_claims(jwt: &str, private_key: &str) -> Option<serde_json::Value> {
    let key = rsa_key(private_key).ok()?;
    let public = key.public_key().as_ref().to_vec();
    let (signed, sig) = jwt.rsplit_once('.')?;
    let (header, payload) = signed.split_once('.')?;
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("RS256") {
        return None;
    }
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public)
        .verify(signed.as_bytes(), &sig)
        .ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// Whether `token` is a JWT (three base64url parts, the first a JSON header
/// naming its `alg`): a credential wherever it came from, so it is never
/// shown (a bearer token that is not one is shown as far as it is not a
/// secret, to show a template that did not render).
pub(crate) fn is_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .is_some_and(|h| h.get("alg").is_some())
}

/// Signs `message` with the Ed25519 key whose 32-byte seed is `seed`:
/// (base64 signature, base64 public key). For stand-ins that sign webhooks.
pub fn ed25519_sign(seed: &[u8; 32], message: &str) -> (String, String) {
    match signature::Ed25519KeyPair::from_seed_unchecked(seed) {
        Ok(pair) => {
            (STANDARD.encode(pair.sign(message.as_bytes()).as_ref()), STANDARD.encode(pair.public_key().as_ref()))
        }
        Err(_) => (String::new(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_matches_rfc_8032_test_1_and_refuses_anything_else() {
        // RFC 8032 section 7.1, TEST 1: the empty message.
        let seed: [u8; 32] =
            hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").try_into().unwrap();
        let (sig, public) = ed25519_sign(&seed, "");
        assert_eq!(
            STANDARD.decode(&public).unwrap(),
            hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        assert_eq!(
            STANDARD.decode(&sig).unwrap(),
            hex(
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
            )
        );
        assert!(ed25519_verify("", &public, &sig));
        let spki = STANDARD.encode([&ED25519_SPKI_PREFIX[..], &STANDARD.decode(&public).unwrap()].concat());
        assert!(ed25519_verify("", &spki, &sig), "the DER form of the key works too");
        assert!(!ed25519_verify("x", &public, &sig));
        assert!(!ed25519_verify("", &public, "not base64!"));
        assert!(!ed25519_verify("", "", &sig));
        assert!(!ed25519_verify("", &public, ""));
    }

    #[test]
    fn is_recent_takes_text_or_numbers_within_the_window_either_way() {
        let now = 1_796_150_000;
        for (at, want) in [
            (Value::from("1796150000"), true),
            (Value::from(" 1796149701 "), true),
            (Value::from(1_796_150_300u64), true),
            (Value::from("1796149699"), false),
            (Value::from(1_796_150_301u64), false),
            (Value::from("soon"), false),
            (Value::from(-5), false),
            (Value::UNDEFINED, false),
        ] {
            assert_eq!(is_recent(&at, 300, now), want, "{at:?}");
        }
    }

    #[test]
    fn a_jwt_is_told_from_other_bearer_tokens() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        assert!(is_jwt(&format!("{header}.e30.c2ln")));
        for other in ["abc", "a.b.c", &format!("{header}.e30"), &format!("{header}.e30.c2ln.x"), "KEY0123.x.y"] {
            assert!(!is_jwt(other), "{other}");
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
}

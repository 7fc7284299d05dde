//! How a PBX's certificate is checked: a profile's `tls:` setting, and the
//! rustls configuration that carries it out.
//!
//! - the default verifies against the system's roots (reqwest's own verifier);
//! - `tls: {verify: false}` accepts any certificate (reqwest's own, too);
//! - `tls: {ca: file}` trusts only the certificates in that PEM file, which
//!   may be a CA or the PBX's own self-signed certificate, even one marked as
//!   a CA ([`CaVerifier`]);
//! - `tls: {pin: "sha256:AB:CD:…"}` accepts exactly the certificate with that
//!   SHA-256 fingerprint ([`PinVerifier`]).
//!
//! `ca:` and `pin:` are rustls [`ClientConfig`]s built here with the crypto
//! provider reqwest uses (aws-lc-rs, or a process default if one was
//! installed), so there is one provider in the binary. Every setting still
//! checks the handshake's signatures, except `verify: false`, which by its
//! name checks nothing.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use sha2::{Digest, Sha256};

/// How a branch's PBX certificate is checked. Clients are pooled by this
/// value: equal settings share one client (and its kept-alive connections).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Tls {
    /// Against the system's roots.
    #[default]
    Verify,
    /// Not at all (`tls: {verify: false}`): for PBXs with self-signed certificates.
    NoVerify,
    /// Against these certificates only (`tls: {ca: file}`), PEM as read at
    /// load; build it with [`Tls::ca`], which checks the file.
    Ca { path: PathBuf, pem: Vec<u8> },
    /// Exactly the certificate with this fingerprint (`tls: {pin: …}`).
    Pin(Fingerprint),
}

impl Tls {
    /// `tls: {ca: path}` with the file's contents: every certificate in it
    /// must be usable as a trust anchor, and there must be at least one.
    pub fn ca(path: PathBuf, pem: Vec<u8>) -> Result<Tls, String> {
        let certs = certificates(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
        roots(&certs).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Tls::Ca { path, pem })
    }

    /// The rustls configuration for `ca:` and `pin:`; `None` for the
    /// settings reqwest builds itself (the system's roots, `verify: false`).
    pub fn client_config(&self) -> Option<Result<ClientConfig, String>> {
        let provider = provider();
        let verifier: Arc<dyn ServerCertVerifier> = match self {
            Tls::Verify | Tls::NoVerify => return None,
            Tls::Ca { path, pem } => match CaVerifier::new(pem, provider.clone()) {
                Ok(v) => Arc::new(v),
                Err(e) => return Some(Err(format!("{}: {e}", path.display()))),
            },
            Tls::Pin(pin) => Arc::new(PinVerifier { pin: *pin, provider: provider.clone() }),
        };
        Some(config(provider, verifier))
    }
}

/// The provider reqwest itself uses: a process-wide default if one was
/// installed, else aws-lc-rs (reqwest's `rustls` feature).
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default().cloned().unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// What reqwest would build, with our verifier: TLS 1.2 and 1.3, no client
/// certificate, HTTP/1.1 offered by ALPN (the client speaks nothing else).
fn config(provider: Arc<CryptoProvider>, verifier: Arc<dyn ServerCertVerifier>) -> Result<ClientConfig, String> {
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificates of a PEM file (other sections, such as a key, are skipped).
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a readable PEM file: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(certs)
}

fn roots(certs: &[CertificateDer<'static>]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        roots.add(cert.clone()).map_err(|e| format!("certificate {} is not usable: {e}", i + 1))?;
    }
    Ok(roots)
}

// ---- fingerprints -----------------------------------------------------------

/// The SHA-256 of a certificate's DER: what `openssl x509 -noout
/// -fingerprint -sha256` and browsers show, printed as `AB:CD:…`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }

    /// Reads a pin as people copy it: `sha256:AB:CD:…`, openssl's whole
    /// line `sha256 Fingerprint=AB:CD:…` or only the part after `=`, with
    /// or without colons (or a browser's spaces), in either case.
    pub fn parse(text: &str) -> Result<Fingerprint, String> {
        let text = text.trim();
        let hex = ["sha256 fingerprint=", "sha256:"]
            .iter()
            .find_map(|prefix| strip_prefix_ignore_case(text, prefix))
            .unwrap_or(text);
        const SHA1: &str = "a SHA-1 fingerprint: give the SHA-256 one (openssl x509 -noout -fingerprint -sha256)";
        if strip_prefix_ignore_case(hex, "sha1").is_some() {
            return Err(format!("that is {SHA1}"));
        }
        let mut digits = Vec::with_capacity(64);
        for c in hex.chars() {
            match c.to_digit(16) {
                Some(d) => digits.push(d as u8),
                None if c == ':' || c == ' ' => {}
                None => return Err(format!("{c:?} is not a hex digit: a pin is like sha256:AB:CD:… (64 hex digits)")),
            }
        }
        match digits.len() {
            64 => {}
            40 => return Err(format!("40 hex digits is {SHA1}")),
            n => return Err(format!("a SHA-256 fingerprint has 64 hex digits, this has {n}")),
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = pair[0] << 4 | pair[1];
        }
        Ok(Fingerprint(out))
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{self}")
    }
}

// ---- verifiers ----------------------------------------------------------------

/// `tls: {ca: file}`: the PBX's certificate must chain to one of the file's
/// certificates (webpki, as for any CA) — or be one of them, byte for byte.
///
/// Why the second way: a PBX's self-signed certificate made the usual way
/// (`openssl req -x509`) is marked CA:TRUE, and webpki refuses a CA
/// certificate as the server's own (`CaUsedAsEndEntity`), since a CA's job
/// is to issue certificates, not to be one. But an operator who puts the
/// PBX's own certificate in `ca:` has said "trust this certificate", and
/// naming the exact bytes is a stronger statement than naming an issuer.
/// So when webpki refuses with exactly that error and the certificate
/// presented is identical to one in the file, it is accepted if it is
/// valid for the name dialled. Its validity period was already checked:
/// webpki checks the dates before the CA flag (a test holds it to that).
/// Any other refusal stands (expired, wrong name, unknown issuer, or a CA
/// certificate that is not one of the file's): `pin:` is the setting that
/// accepts a certificate whatever its name or dates. In both ways the
/// handshake's signatures are checked against the certificate's key, so
/// the server proves it holds that key.
#[derive(Debug)]
pub struct CaVerifier {
    chain: Arc<WebPkiServerVerifier>,
    certs: Vec<CertificateDer<'static>>,
}

impl CaVerifier {
    pub fn new(pem: &[u8], provider: Arc<CryptoProvider>) -> Result<CaVerifier, String> {
        let certs = certificates(pem)?;
        let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(&certs)?), provider)
            .build()
            .map_err(|e| format!("cannot set up TLS: {e}"))?;
        Ok(CaVerifier { chain, certs })
    }
}

/// webpki's refusal of a CA certificate presented as the server's own.
fn ca_used_as_end_entity(e: &rustls::Error) -> bool {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            matches!(other.0.downcast_ref::<webpki::Error>(), Some(webpki::Error::CaUsedAsEndEntity))
        }
        _ => false,
    }
}

impl ServerCertVerifier for CaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(e) if ca_used_as_end_entity(&e) && self.certs.iter().any(|c| c.as_ref() == end_entity.as_ref()) => {
                verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.chain.root_hint_subjects()
    }
}

/// `tls: {pin: …}`: exactly the certificate with this SHA-256 fingerprint,
/// whatever its issuer, name or dates.
///
/// Why nothing else is checked: the operator read the fingerprint off the
/// PBX's certificate, which identifies that one certificate, so its issuer
/// and name add nothing, and its dates are what make self-signed PBX
/// certificates fail years after installation. What is still checked is the
/// handshake's signatures, with the provider's algorithms: a server that
/// merely replays the certificate without its private key is refused.
#[derive(Debug)]
pub struct PinVerifier {
    pin: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl PinVerifier {
    pub fn new(pin: Fingerprint, provider: Arc<CryptoProvider>) -> PinVerifier {
        PinVerifier { pin, provider }
    }
}

/// The refusal of a certificate that is not the pinned one, naming both
/// fingerprints so the operator can tell a replaced certificate from an attack.
/// rustls shows it with `Debug`, so that is the sentence too.
struct PinMismatch {
    presented: Fingerprint,
    pinned: Fingerprint,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the PBX's certificate has SHA-256 fingerprint {}, the profile pins {}", self.presented, self.pinned)
    }
}

impl fmt::Debug for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for PinMismatch {}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of(end_entity);
        if presented == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            let mismatch = PinMismatch { presented, pinned: self.pin };
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(mismatch)))))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

    /// A self-signed certificate for 127.0.0.1 and localhost, marked CA:TRUE
    /// like `openssl req -x509` makes it.
    fn self_signed_ca() -> (rcgen::Certificate, KeyPair) {
        self_signed_ca_with(|_| {})
    }

    fn self_signed_ca_with(change: impl FnOnce(&mut CertificateParams)) -> (rcgen::Certificate, KeyPair) {
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        change(&mut params);
        let key = KeyPair::generate().unwrap();
        (params.self_signed(&key).unwrap(), key)
    }

    fn ca_verifier(pem: &str) -> CaVerifier {
        CaVerifier::new(pem.as_bytes(), provider()).unwrap()
    }

    fn name(n: &str) -> ServerName<'static> {
        ServerName::try_from(n.to_string()).unwrap()
    }

    fn check(verifier: &dyn ServerCertVerifier, cert: &rcgen::Certificate, host: &str) -> Result<(), String> {
        let now = UnixTime::now();
        verifier.verify_server_cert(cert.der(), &[], &name(host), &[], now).map(|_| ()).map_err(|e| e.to_string())
    }

    #[test]
    fn webpki_alone_refuses_a_self_signed_ca_as_the_servers_own() {
        // The defect this module exists for: the CA:TRUE certificate as its own root.
        let (cert, _) = self_signed_ca();
        let mut roots = RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let plain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build().unwrap();
        let e = plain.verify_server_cert(cert.der(), &[], &name("127.0.0.1"), &[], UnixTime::now()).unwrap_err();
        assert!(ca_used_as_end_entity(&e), "{e}");
    }

    #[test]
    fn ca_accepts_the_pbxs_own_ca_marked_certificate_for_its_names_only() {
        let (cert, _) = self_signed_ca();
        let v = ca_verifier(&cert.pem());
        assert_eq!(check(&v, &cert, "127.0.0.1"), Ok(()));
        assert_eq!(check(&v, &cert, "localhost"), Ok(()));
        let wrong = check(&v, &cert, "pbx.example.com").unwrap_err();
        assert!(wrong.contains("not valid for name"), "{wrong}");
    }

    #[test]
    fn ca_still_checks_the_dates_of_the_pbxs_own_certificate() {
        // webpki checks the dates before the CA flag; if it ever stops, this fails.
        let (cert, _) = self_signed_ca_with(|p| {
            p.not_before = rcgen::date_time_ymd(2015, 1, 1);
            p.not_after = rcgen::date_time_ymd(2020, 1, 1);
        });
        let v = ca_verifier(&cert.pem());
        let e = check(&v, &cert, "127.0.0.1").unwrap_err();
        assert!(e.contains("expired"), "{e}");
        let (later, _) = self_signed_ca_with(|p| p.not_before = rcgen::date_time_ymd(2999, 1, 1));
        let e = check(&ca_verifier(&later.pem()), &later, "127.0.0.1").unwrap_err();
        assert!(e.contains("not valid yet"), "{e}");
    }

    #[test]
    fn ca_refuses_another_ca_certificate_presented_as_the_servers_own() {
        let (trusted, _) = self_signed_ca();
        let (other, _) = self_signed_ca();
        let e = check(&ca_verifier(&trusted.pem()), &other, "127.0.0.1").unwrap_err();
        assert!(e.contains("CaUsedAsEndEntity") || e.contains("UnknownIssuer") || e.contains("issuer"), "{e}");
    }

    #[test]
    fn ca_accepts_a_leaf_issued_by_the_ca_for_the_leafs_names() {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.distinguished_name.push(DnType::CommonName, "PBX vendor CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".into()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
        let v = ca_verifier(&ca.pem());
        assert_eq!(check(&v, &leaf, "localhost"), Ok(()));
        assert!(check(&v, &leaf, "127.0.0.1").is_err(), "the leaf's own names count");
    }

    #[test]
    fn pin_accepts_exactly_its_certificate_whatever_its_name_or_dates() {
        let (cert, _) = self_signed_ca();
        let (other, _) = self_signed_ca();
        let v = PinVerifier::new(Fingerprint::of(cert.der()), provider());
        assert_eq!(check(&v, &cert, "pbx.example.com"), Ok(()));
        let (expired, _) = self_signed_ca_with(|p| {
            p.not_before = rcgen::date_time_ymd(2015, 1, 1);
            p.not_after = rcgen::date_time_ymd(2020, 1, 1);
        });
        let v_expired = PinVerifier::new(Fingerprint::of(expired.der()), provider());
        assert_eq!(check(&v_expired, &expired, "127.0.0.1"), Ok(()));
        let e = check(&v, &other, "127.0.0.1").unwrap_err();
        assert!(e.contains(&Fingerprint::of(other.der()).to_string()), "the refusal names what was presented: {e}");
    }

    #[test]
    fn fingerprints_are_read_as_people_copy_them() {
        let fp = Fingerprint([0xAB; 32]);
        let colons = fp.to_string();
        assert_eq!(colons.len(), 95);
        for text in [
            format!("sha256 Fingerprint={colons}"),
            format!("SHA256 Fingerprint={colons}"),
            colons.clone(),
            format!("sha256:{colons}"),
            format!("SHA256:{}", colons.to_lowercase()),
            colons.replace(':', ""),
            colons.replace(':', " "),
            format!("  sha256:{}  ", colons.replace(':', "").to_lowercase()),
        ] {
            assert_eq!(Fingerprint::parse(&text), Ok(fp), "{text}");
        }
        assert!(Fingerprint::parse("sha256:AB:CD").unwrap_err().contains("64 hex digits, this has 4"));
        assert!(Fingerprint::parse(&"ab".repeat(20)).unwrap_err().contains("SHA-1"));
        assert!(
            Fingerprint::parse(&format!("sha1 Fingerprint={}", "AB:".repeat(19) + "AB")).unwrap_err().contains("SHA-1")
        );
        assert!(Fingerprint::parse(&format!("{}ZZ", "ab".repeat(31))).unwrap_err().contains("'Z' is not a hex digit"));
        assert!(Fingerprint::parse("").is_err());
    }

    #[test]
    fn ca_files_are_checked() {
        let (cert, key) = self_signed_ca();
        assert!(Tls::ca("a.pem".into(), cert.pem().into_bytes()).is_ok());
        let bundle = format!("{}{}", key.serialize_pem(), cert.pem());
        assert!(Tls::ca("b.pem".into(), bundle.into_bytes()).is_ok(), "a key next to the certificate is skipped");
        let e = Tls::ca("c.pem".into(), b"not a certificate".to_vec()).unwrap_err();
        assert!(e.starts_with("c.pem: ") && e.contains("no PEM certificate"), "{e}");
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(Tls::ca("d.pem".into(), garbage.as_bytes().to_vec()).is_err());
    }
}

//! TLS material for the transport layer: server identities and client verification.
//!
//! This module owns:
//! * [`Identity`]: a certificate chain plus private key, either loaded from PEM files
//!   ([`Identity::load`]) or generated ([`Identity::self_signed`]) in the shape browsers accept for
//!   WebTransport `serverCertificateHashes` (ECDSA P-256, valid exactly 14 days, `not_before`
//!   backdated one day).
//! * [`Fingerprint`]: the SHA-256 of a leaf certificate's DER, printed and parsed as hex.
//! * [`Verification`]: how a client checks the server (system roots, a root PEM file, a pinned
//!   fingerprint, or explicitly nothing), and the rustls configs built from all of the above.
//!
//! Everything uses the `ring` crypto provider ([`provider`]); nothing here touches the global
//! rustls default provider. This module never opens sockets and never panics on bad input: unreadable
//! or malformed files come back as a [`TlsError`] naming the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

/// How long a generated certificate is valid: the browser maximum for `serverCertificateHashes`.
pub const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// How far a generated certificate's `not_before` is backdated, to tolerate clock skew.
pub const SELF_SIGNED_BACKDATE: Duration = Duration::from_secs(24 * 60 * 60);

/// Errors from loading, generating or configuring TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid PEM.
    #[error("invalid PEM in {path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        source: rustls_pki_types::pem::Error,
    },
    /// A certificate file holds no `CERTIFICATE` block.
    #[error("no certificate found in {0}")]
    NoCertificate(PathBuf),
    /// A key file holds no private key block (PKCS#8, PKCS#1 or SEC1).
    #[error("no private key found in {0}")]
    NoPrivateKey(PathBuf),
    /// A root file held certificates, but none was usable as a trust anchor.
    #[error("no usable root certificate in {0}")]
    NoUsableRoot(PathBuf),
    /// The platform's root store yielded no certificates.
    #[error("no system root certificates could be loaded")]
    NoSystemRoots,
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A fingerprint string is not 32 bytes of hex.
    #[error("invalid SHA-256 fingerprint {0:?}: expected 64 hex digits (colons allowed)")]
    InvalidFingerprint(String),
    /// rustls refused the configuration (e.g. a key that does not match the certificate).
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
    /// The WebPKI verifier could not be built from the roots.
    #[error("cannot build certificate verifier: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
}

/// The crypto provider used for every config built here (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain (leaf first) and its private key.
#[derive(Debug)]
pub struct Identity {
    /// The certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key of the leaf.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity { chain: self.chain.clone(), key: self.key.clone_key() }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

/// Parses every `CERTIFICATE` block in a PEM file.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem { path: path.to_owned(), source })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(chain)
}

/// Parses the first private key block in a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file(path)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => Err(TlsError::NoPrivateKey(path.to_owned())),
        Err(source) => Err(TlsError::Pem { path: path.to_owned(), source }),
    }
}

impl Identity {
    /// Loads a PEM certificate chain (leaf first) and a PEM private key, and checks that they match.
    pub fn load(cert_path: impl AsRef<Path>, key_path: impl AsRef<Path>) -> Result<Identity, TlsError> {
        let chain = load_certificates(cert_path.as_ref())?;
        let key = load_private_key(key_path.as_ref())?;
        let identity = Identity { chain, key };
        // Fail here, with the file names still at hand, rather than at bind time.
        identity.certified_key()?;
        Ok(identity)
    }

    /// Generates an ECDSA P-256 self-signed certificate for `names` (DNS names or IP addresses),
    /// valid exactly [`SELF_SIGNED_VALIDITY`] from a `not_before` of now minus [`SELF_SIGNED_BACKDATE`].
    ///
    /// This is the shape browsers accept for WebTransport `serverCertificateHashes`. Regenerate it at
    /// least every 13 days.
    pub fn self_signed<S: AsRef<str>>(names: &[S]) -> Result<Identity, TlsError> {
        Identity::self_signed_at(names, SystemTime::now())
    }

    /// [`Identity::self_signed`] with an explicit "now" (whole seconds are used).
    pub fn self_signed_at<S: AsRef<str>>(names: &[S], now: SystemTime) -> Result<Identity, TlsError> {
        let names: Vec<String> = names.iter().map(|n| n.as_ref().to_owned()).collect();
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(names.clone())?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, names.first().cloned().unwrap_or_else(|| "moqt".to_owned()));
        params.distinguished_name = dn;
        let now = time::OffsetDateTime::from(now).replace_nanosecond(0).expect("0 is a valid nanosecond");
        let backdate = time::Duration::try_from(SELF_SIGNED_BACKDATE).expect("fits");
        let validity = time::Duration::try_from(SELF_SIGNED_VALIDITY).expect("fits");
        params.not_before = now - backdate;
        params.not_after = params.not_before + validity;
        let cert = params.self_signed(&key_pair)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        tracing::debug!(?names, fingerprint = %Fingerprint::of(cert.der()), "generated self-signed certificate");
        Ok(Identity { chain: vec![cert.der().clone()], key })
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The SHA-256 fingerprint of the leaf certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.leaf())
    }

    /// The chain as PEM text.
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(|c| pem_block("CERTIFICATE", c)).collect()
    }

    /// The private key as PEM text.
    pub fn key_pem(&self) -> String {
        let label = match &self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        pem_block(label, self.key.secret_der())
    }

    /// A secret derived from the private key, for keys that must survive a restart with the
    /// same identity (QUIC stateless resets).
    pub(crate) fn derived_secret(&self, label: &[u8]) -> [u8; 32] {
        Sha256::new().chain_update(label).chain_update(self.key.secret_der()).finalize().into()
    }

    fn certified_key(&self) -> Result<rustls::sign::CertifiedKey, TlsError> {
        Ok(rustls::sign::CertifiedKey::from_der(self.chain.clone(), self.key.clone_key(), &provider())?)
    }

    /// A TLS 1.3 rustls server config presenting this identity and offering `alpns` (server order).
    pub fn server_config(&self, alpns: &[&[u8]]) -> Result<rustls::ServerConfig, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
        Ok(config)
    }
}

fn pem_block(label: &str, der: &[u8]) -> String {
    // Minimal base64 encoder: avoids a dependency for a few hundred bytes of output.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The SHA-256 of a certificate's DER encoding (what `serverCertificateHashes` pins).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    /// Lower-case hex, no separators.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = TlsError;

    /// Accepts 64 hex digits, optionally separated by `:` (as `openssl x509 -fingerprint` prints).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: String = s.trim().chars().filter(|c| *c != ':').collect();
        let mut out = [0u8; 32];
        hex::decode_to_slice(&digits, &mut out).map_err(|_| TlsError::InvalidFingerprint(s.to_owned()))?;
        Ok(Fingerprint(out))
    }
}

/// How a client verifies the server's certificate.
#[derive(Debug, Clone)]
pub enum Verification {
    /// WebPKI verification against the platform's root store.
    SystemRoots,
    /// WebPKI verification against the root certificate(s) in this PEM file.
    RootFile(PathBuf),
    /// WebPKI verification against these roots.
    Roots(Vec<CertificateDer<'static>>),
    /// Accept only a leaf whose SHA-256 is one of these; the name and the issuer are not checked.
    Pinned(Vec<Fingerprint>),
    /// Accept any certificate. Development only: anyone on the path can impersonate the server.
    InsecureNoVerification,
}

impl Verification {
    /// Pin a single fingerprint.
    pub fn pinned(fingerprint: Fingerprint) -> Verification {
        Verification::Pinned(vec![fingerprint])
    }

    /// Builds the certificate verifier for this mode.
    pub fn verifier(&self) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
        let provider = provider();
        let roots = match self {
            Verification::SystemRoots => {
                let native = rustls_native_certs::load_native_certs();
                for err in &native.errors {
                    tracing::warn!(%err, "error while loading system root certificates");
                }
                let mut roots = rustls::RootCertStore::empty();
                let (added, ignored) = roots.add_parsable_certificates(native.certs);
                tracing::debug!(added, ignored, "loaded system root certificates");
                if roots.is_empty() {
                    return Err(TlsError::NoSystemRoots);
                }
                roots
            }
            Verification::RootFile(path) => {
                let mut roots = rustls::RootCertStore::empty();
                let (added, ignored) = roots.add_parsable_certificates(load_certificates(path)?);
                if added == 0 {
                    return Err(TlsError::NoUsableRoot(path.clone()));
                }
                if ignored > 0 {
                    tracing::warn!(path = %path.display(), ignored, "some root certificates were not usable");
                }
                roots
            }
            Verification::Roots(certs) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in certs {
                    roots.add(cert.clone())?;
                }
                roots
            }
            Verification::Pinned(fingerprints) => {
                return Ok(Arc::new(PinnedVerifier { provider, fingerprints: Some(fingerprints.clone()) }));
            }
            Verification::InsecureNoVerification => {
                tracing::warn!("TLS certificate verification is disabled (development only)");
                return Ok(Arc::new(PinnedVerifier { provider, fingerprints: None }));
            }
        };
        Ok(rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()?)
    }

    /// A TLS 1.3 rustls client config with this verification, offering `alpns` in preference order.
    pub fn client_config(&self, alpns: &[&[u8]]) -> Result<rustls::ClientConfig, TlsError> {
        let verifier = self.verifier()?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
        Ok(config)
    }
}

/// Accepts exactly the pinned leaf certificates; handshake signatures are still verified.
#[derive(Debug)]
pub struct PinnedVerifier {
    provider: Arc<CryptoProvider>,
    /// `None` accepts any certificate (the explicit development mode).
    fingerprints: Option<Vec<Fingerprint>>,
}

impl PinnedVerifier {
    /// A verifier accepting only leaves with one of these fingerprints.
    pub fn new(fingerprints: Vec<Fingerprint>) -> PinnedVerifier {
        PinnedVerifier { provider: provider(), fingerprints: Some(fingerprints) }
    }
}

/// Why a pinned verifier refused a certificate (carried inside the rustls error).
///
/// Its `Debug` form is the same sentence, because rustls prints the inner error with `{:?}`.
#[derive(thiserror::Error)]
#[error("server certificate fingerprint {got} does not match the pinned fingerprint(s)")]
pub struct FingerprintMismatch {
    /// The fingerprint the server presented.
    pub got: Fingerprint,
}

impl fmt::Debug for FingerprintMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Signatures are always checked against the presented key; only the certificate check differs
/// between pinned and accept-any.
impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Fingerprint::of(end_entity);
        if self.fingerprints.as_ref().is_none_or(|pins| pins.contains(&got)) {
            Ok(ServerCertVerified::assertion())
        } else {
            tracing::debug!(%got, "rejecting server certificate: fingerprint not pinned");
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(Arc::new(
                FingerprintMismatch { got },
            )))))
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

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("moqt-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn self_signed_is_p256_and_valid_exactly_14_days() {
        let id = Identity::self_signed(&["localhost", "127.0.0.1", "::1"]).unwrap();
        assert_eq!(id.chain.len(), 1);
        let (_, cert) = x509_parser::parse_x509_certificate(id.leaf()).unwrap();

        // ECDSA public key on secp256r1 (P-256), signed with ecdsa-with-SHA256.
        let spki = &cert.tbs_certificate.subject_pki;
        assert_eq!(spki.algorithm.algorithm, x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY);
        let curve = spki.algorithm.parameters.as_ref().unwrap().as_oid().unwrap();
        assert_eq!(curve, x509_parser::oid_registry::OID_EC_P256);
        assert_eq!(cert.signature_algorithm.algorithm, x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256);

        let validity = cert.validity();
        let span = validity.not_after.timestamp() - validity.not_before.timestamp();
        assert_eq!(span, 14 * 24 * 3600);
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
        let backdate = now - validity.not_before.timestamp();
        assert!((24 * 3600..24 * 3600 + 5).contains(&backdate), "backdated by {backdate}s");

        // SANs: the DNS name and both IP addresses.
        let san = cert.subject_alternative_name().unwrap().unwrap();
        use x509_parser::extensions::GeneralName;
        let names = &san.value.general_names;
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.contains(&GeneralName::DNSName("localhost")), "{names:?}");
        assert!(names.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])), "{names:?}");
        let v6_loopback = std::net::Ipv6Addr::LOCALHOST.octets();
        assert!(names.contains(&GeneralName::IPAddress(&v6_loopback)), "{names:?}");

        // The generated key works with rustls.
        id.server_config(&[b"h3"]).unwrap();
    }

    #[test]
    fn fingerprint_is_stable_and_round_trips() {
        let id = Identity::self_signed(&["localhost"]).unwrap();
        let a = id.fingerprint();
        let b = Fingerprint::of(id.leaf());
        assert_eq!(a, b);
        assert_eq!(a, id.clone().fingerprint());
        let hex = a.to_string();
        assert_eq!(hex.len(), 64);
        assert_eq!(hex.parse::<Fingerprint>().unwrap(), a);
        // colon-separated upper case (openssl style) parses too
        let colons: Vec<String> = a.0.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(colons.join(":").parse::<Fingerprint>().unwrap(), a);
        assert!("abcd".parse::<Fingerprint>().is_err());

        // A different certificate has a different fingerprint.
        let other = Identity::self_signed(&["localhost"]).unwrap();
        assert_ne!(other.fingerprint(), a);
    }

    #[test]
    fn pinned_verifier_accepts_only_the_pinned_leaf() {
        let id = Identity::self_signed(&["localhost"]).unwrap();
        let other = Identity::self_signed(&["localhost"]).unwrap();
        let verifier = PinnedVerifier::new(vec![id.fingerprint()]);
        let name = ServerName::try_from("localhost").unwrap();
        let now = UnixTime::now();
        assert!(verifier.verify_server_cert(id.leaf(), &[], &name, &[], now).is_ok());
        let err = verifier.verify_server_cert(other.leaf(), &[], &name, &[], now).unwrap_err();
        assert!(err.to_string().contains("does not match the pinned"), "{err}");
    }

    #[test]
    fn load_round_trips_and_reports_bad_files() {
        let dir = tempdir("load");
        let id = Identity::self_signed(&["localhost"]).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, id.chain_pem()).unwrap();
        std::fs::write(&key, id.key_pem()).unwrap();
        let loaded = Identity::load(&cert, &key).unwrap();
        assert_eq!(loaded.fingerprint(), id.fingerprint());

        // Missing file.
        let err = Identity::load(dir.join("missing.pem"), &key).unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");

        // Not PEM / no blocks.
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, b"hello world\n").unwrap();
        let err = Identity::load(&garbage, &key).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate(_)), "{err}");
        let err = Identity::load(&cert, &garbage).unwrap_err();
        assert!(matches!(err, TlsError::NoPrivateKey(_)), "{err}");

        // Broken base64 inside a block.
        let broken = dir.join("broken.pem");
        std::fs::write(&broken, b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").unwrap();
        let err = Identity::load(&broken, &key).unwrap_err();
        assert!(matches!(err, TlsError::Pem { .. }), "{err}");

        // A key that does not belong to the certificate.
        let other_key = dir.join("other-key.pem");
        std::fs::write(&other_key, Identity::self_signed(&["x"]).unwrap().key_pem()).unwrap();
        let err = Identity::load(&cert, &other_key).unwrap_err();
        assert!(matches!(err, TlsError::Rustls(_)), "{err}");

        // Root file verification mode reads the same PEM.
        Verification::RootFile(cert.clone()).verifier().unwrap();
        let err = Verification::RootFile(garbage).verifier().unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate(_)), "{err}");

        std::fs::remove_dir_all(dir).ok();
    }
}

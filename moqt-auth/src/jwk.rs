//! Keys in moq-token's file format: a JWK (RFC 7517) written as base64url-encoded JSON (no
//! padding, no newline). Reading also accepts the JSON itself and padded base64url. Every
//! material is checked when it is loaded (lengths, curve points, private half matching the public
//! half), so a bad file fails at start, not at the first token.
//!
//! The JWK fields: `alg` (required), `kty` (`oct` when absent, as moq-token allows), `key_ops`
//! (`sign`/`verify`/`encrypt`/`decrypt`; both `sign` and `verify` when absent), `kid`
//! (1–128 of `A-Za-z0-9-_`), the material (`k`; `crv`,`x`,`y`,`d`; `crv`,`x`,`d`;
//! `n`,`e`,`d`,`p`,`q`,`dp`,`dq`,`qi`), and `scope` (see [`Scope`]). Other fields are ignored.

use std::path::Path as FsPath;
use std::str::FromStr;

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::Serialize;
use serde_json::Value;

use crate::claims::Scope;
use crate::error::KeyError;

/// The least an HMAC secret may hold (moq-token's minimum).
pub const MIN_SECRET_LEN: usize = 32;
/// The largest key file read.
pub const MAX_KEY_FILE: u64 = 64 * 1024;

/// The signing algorithms moq-token offers.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    ES256,
    ES384,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    EdDSA,
}

impl Algorithm {
    /// Every algorithm, in moq-token's order.
    pub const ALL: [Algorithm; 12] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::EdDSA,
    ];

    /// The JOSE name (`HS256`, …, `EdDSA`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Whether this is an HMAC (shared secret) algorithm.
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as J;
        match self {
            Algorithm::HS256 => J::HS256,
            Algorithm::HS384 => J::HS384,
            Algorithm::HS512 => J::HS512,
            Algorithm::ES256 => J::ES256,
            Algorithm::ES384 => J::ES384,
            Algorithm::RS256 => J::RS256,
            Algorithm::RS384 => J::RS384,
            Algorithm::RS512 => J::RS512,
            Algorithm::PS256 => J::PS256,
            Algorithm::PS384 => J::PS384,
            Algorithm::PS512 => J::PS512,
            Algorithm::EdDSA => J::EdDSA,
        }
    }
}

impl FromStr for Algorithm {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Algorithm, KeyError> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| KeyError::Algorithm(s.to_string()))
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An elliptic curve for `EC` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// P-256 (ES256): 32-byte coordinates.
    P256,
    /// P-384 (ES384): 48-byte coordinates.
    P384,
}

impl Curve {
    fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
        }
    }

    fn size(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }
}

/// The private half of an RSA key (two primes and the CRT values).
#[allow(missing_docs)]
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPrivate {
    pub d: Vec<u8>,
    pub p: Vec<u8>,
    pub q: Vec<u8>,
    pub dp: Vec<u8>,
    pub dq: Vec<u8>,
    pub qi: Vec<u8>,
}

/// The key material, by JWK key type. Byte strings are big-endian, as in the JWK.
#[derive(Clone, PartialEq, Eq)]
pub enum Material {
    /// `oct`: an HMAC secret.
    Oct {
        /// The secret (`k`).
        secret: Vec<u8>,
    },
    /// `EC`: an ECDSA key.
    Ec {
        /// The curve (`crv`).
        curve: Curve,
        /// The public point's x coordinate.
        x: Vec<u8>,
        /// The public point's y coordinate.
        y: Vec<u8>,
        /// The private scalar, when present.
        d: Option<Vec<u8>>,
    },
    /// `OKP` with `crv: Ed25519`: an EdDSA key.
    Okp {
        /// The public key.
        x: Vec<u8>,
        /// The private seed, when present.
        d: Option<Vec<u8>>,
    },
    /// `RSA`.
    Rsa {
        /// The modulus.
        n: Vec<u8>,
        /// The public exponent.
        e: Vec<u8>,
        /// The private half, when present.
        private: Option<RsaPrivate>,
    },
}

/// A loaded, validated key: what it is for, what it may do, and its crypto material.
#[derive(Clone)]
pub struct Key {
    pub(crate) alg: Algorithm,
    pub(crate) material: Material,
    pub(crate) kid: Option<String>,
    pub(crate) ops: Vec<String>,
    pub(crate) scope: Option<Scope>,
    pub(crate) decoding: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("ops", &self.ops)
            .field("private", &self.is_private())
            .field("scope", &self.scope)
            .finish()
    }
}

impl Key {
    /// Builds a key from its parts, validating them (used by generation and by the reader).
    pub fn new(alg: Algorithm, material: Material, kid: Option<String>) -> Result<Key, KeyError> {
        Key::assemble(alg, material, kid, vec!["sign".into(), "verify".into()], None)
    }

    fn assemble(
        alg: Algorithm,
        material: Material,
        kid: Option<String>,
        ops: Vec<String>,
        scope: Option<Scope>,
    ) -> Result<Key, KeyError> {
        if let Some(kid) = &kid {
            check_kid(kid)?;
        }
        let decoding = validate(alg, &material)?;
        Ok(Key { alg, material, kid, ops, scope, decoding })
    }

    /// Reads a key from text: JSON, or base64url-encoded JSON (padded or not). Surrounding
    /// whitespace is ignored.
    pub fn from_text(text: &str) -> Result<Key, KeyError> {
        let text = text.trim();
        let json = if text.starts_with('{') {
            text.as_bytes().to_vec()
        } else {
            URL_SAFE_NO_PAD
                .decode(text)
                .or_else(|_| URL_SAFE.decode(text))
                .map_err(|e| KeyError::Encoding(format!("base64url: {e}")))?
        };
        let value: Value = serde_json::from_slice(&json).map_err(|e| KeyError::Encoding(format!("JSON: {e}")))?;
        Key::from_jwk(&value)
    }

    /// Reads a key file (see [`from_text`](Self::from_text)).
    pub fn from_file(path: &FsPath) -> Result<Key, KeyError> {
        let io = |source| KeyError::Io { path: path.display().to_string(), source };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > MAX_KEY_FILE {
            return Err(KeyError::Invalid(format!("{} is larger than {MAX_KEY_FILE} bytes", path.display())));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Key::from_text(&text)
    }

    /// Reads a JWK object.
    pub fn from_jwk(value: &Value) -> Result<Key, KeyError> {
        let Value::Object(map) = value else { return Err(KeyError::Invalid("not a JSON object".into())) };
        let text = |name: &str| -> Result<Option<&str>, KeyError> {
            match map.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(KeyError::Invalid(format!("{name} must be a string"))),
            }
        };
        let bytes = |name: &str| -> Result<Option<Vec<u8>>, KeyError> {
            text(name)?
                .map(|s| {
                    URL_SAFE_NO_PAD
                        .decode(s)
                        .or_else(|_| URL_SAFE.decode(s))
                        .map_err(|e| KeyError::Invalid(format!("{name}: {e}")))
                })
                .transpose()
        };
        let need = |name: &str| bytes(name)?.ok_or_else(|| KeyError::Invalid(format!("missing {name}")));
        let alg: Algorithm = text("alg")?.ok_or_else(|| KeyError::Invalid("missing alg".into()))?.parse()?;
        let material = match text("kty")?.unwrap_or("oct") {
            "oct" => Material::Oct { secret: need("k")? },
            "EC" => {
                let curve = match text("crv")? {
                    Some("P-256") => Curve::P256,
                    Some("P-384") => Curve::P384,
                    other => return Err(KeyError::Invalid(format!("unsupported EC curve {other:?}"))),
                };
                Material::Ec { curve, x: need("x")?, y: need("y")?, d: bytes("d")? }
            }
            "OKP" => match text("crv")? {
                Some("Ed25519") => Material::Okp { x: need("x")?, d: bytes("d")? },
                other => return Err(KeyError::Invalid(format!("unsupported OKP curve {other:?}"))),
            },
            "RSA" => {
                let names = ["d", "p", "q", "dp", "dq", "qi"];
                let present = names.iter().filter(|n| map.get(**n).is_some_and(|v| !v.is_null())).count();
                let private = match present {
                    0 => None,
                    6 => Some(RsaPrivate {
                        d: need("d")?,
                        p: need("p")?,
                        q: need("q")?,
                        dp: need("dp")?,
                        dq: need("dq")?,
                        qi: need("qi")?,
                    }),
                    _ => return Err(KeyError::Invalid("an RSA private key needs d, p, q, dp, dq and qi".into())),
                };
                if map.get("oth").is_some_and(|v| !v.is_null()) {
                    return Err(KeyError::Invalid("multi-prime RSA keys (oth) are not supported".into()));
                }
                Material::Rsa { n: need("n")?, e: need("e")?, private }
            }
            other => return Err(KeyError::Invalid(format!("unsupported key type {other:?}"))),
        };
        let ops = match map.get("key_ops") {
            None | Some(Value::Null) => vec!["sign".to_string(), "verify".to_string()],
            Some(Value::Array(items)) => {
                let mut ops = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(op @ ("sign" | "verify" | "encrypt" | "decrypt")) => {
                            if !ops.iter().any(|o| o == op) {
                                ops.push(op.to_string());
                            }
                        }
                        _ => return Err(KeyError::Invalid(format!("unknown key operation {item}"))),
                    }
                }
                ops
            }
            Some(_) => return Err(KeyError::Invalid("key_ops must be a list".into())),
        };
        let scope = match map.get("scope") {
            None | Some(Value::Null) => None,
            Some(v) => Some(Scope::from_value(v).map_err(|e| KeyError::Invalid(format!("scope: {e}")))?),
        };
        Key::assemble(alg, material, text("kid")?.map(str::to_string), ops, scope)
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key ID, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The scope that caps what its tokens may grant, if any.
    pub fn scope(&self) -> Option<&Scope> {
        self.scope.as_ref()
    }

    /// The material.
    pub fn material(&self) -> &Material {
        &self.material
    }

    /// Whether `key_ops` allows `op` (`sign`, `verify`).
    pub fn allows(&self, op: &str) -> bool {
        self.ops.iter().any(|o| o == op)
    }

    /// Whether the key holds private material (what signing needs and what must not leak).
    pub fn is_private(&self) -> bool {
        match &self.material {
            Material::Oct { .. } => true,
            Material::Ec { d, .. } | Material::Okp { d, .. } => d.is_some(),
            Material::Rsa { private, .. } => private.is_some(),
        }
    }

    /// A copy with the key operations replaced.
    pub fn with_ops(mut self, ops: &[&str]) -> Key {
        self.ops = ops.iter().map(|s| s.to_string()).collect();
        self
    }

    /// A copy with a scope attached (refused when it allows nothing).
    pub fn with_scope(mut self, scope: Scope) -> Result<Key, KeyError> {
        if scope.publish.is_empty() && scope.subscribe.is_empty() {
            return Err(KeyError::Invalid("the scope allows nothing".into()));
        }
        self.scope = Some(scope);
        Ok(self)
    }

    /// The verify-only public half (`key_ops: ["verify"]`); an HMAC key has none.
    pub fn public(&self) -> Result<Key, KeyError> {
        if !self.allows("verify") {
            return Err(KeyError::Operation("verify"));
        }
        let material = match &self.material {
            Material::Oct { .. } => return Err(KeyError::NoPublicPart),
            Material::Ec { curve, x, y, .. } => Material::Ec { curve: *curve, x: x.clone(), y: y.clone(), d: None },
            Material::Okp { x, .. } => Material::Okp { x: x.clone(), d: None },
            Material::Rsa { n, e, .. } => Material::Rsa { n: n.clone(), e: e.clone(), private: None },
        };
        Key::assemble(self.alg, material, self.kid.clone(), vec!["verify".into()], self.scope.clone())
    }

    /// The JWK as JSON text, fields in moq-token's order.
    pub fn to_json(&self) -> String {
        let b = |v: &Vec<u8>| Some(URL_SAFE_NO_PAD.encode(v));
        let mut wire = WireJwk {
            alg: self.alg.as_str(),
            key_ops: self.ops.clone(),
            kty: "oct",
            crv: None,
            k: None,
            n: None,
            e: None,
            x: None,
            y: None,
            d: None,
            p: None,
            q: None,
            dp: None,
            dq: None,
            qi: None,
            kid: self.kid.clone(),
            scope: self.scope.as_ref().map(Scope::to_value),
        };
        match &self.material {
            Material::Oct { secret } => wire.k = b(secret),
            Material::Ec { curve, x, y, d } => {
                (wire.kty, wire.crv, wire.x, wire.y) = ("EC", Some(curve.name()), b(x), b(y));
                wire.d = d.as_ref().and_then(b);
            }
            Material::Okp { x, d } => {
                (wire.kty, wire.crv, wire.x) = ("OKP", Some("Ed25519"), b(x));
                wire.d = d.as_ref().and_then(b);
            }
            Material::Rsa { n, e, private } => {
                (wire.kty, wire.n, wire.e) = ("RSA", b(n), b(e));
                if let Some(p) = private {
                    (wire.d, wire.p, wire.q) = (b(&p.d), b(&p.p), b(&p.q));
                    (wire.dp, wire.dq, wire.qi) = (b(&p.dp), b(&p.dq), b(&p.qi));
                }
            }
        }
        // A struct of strings serializes infallibly.
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// The file form: base64url (no padding) of [`to_json`](Self::to_json).
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.to_json())
    }

    /// Writes [`to_text`](Self::to_text) to `path` (no newline). A key with private material is
    /// made owner-only (mode 0600 on Unix), also when it replaces a more open file.
    pub fn write_file(&self, path: &FsPath) -> Result<(), KeyError> {
        let io = |source| KeyError::Io { path: path.display().to_string(), source };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if self.is_private() {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        #[cfg(unix)]
        if self.is_private() {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        std::io::Write::write_all(&mut file, self.to_text().as_bytes()).map_err(io)
    }

    /// The signing key for jsonwebtoken, built from the private material.
    pub(crate) fn encoding_key(&self) -> Result<EncodingKey, KeyError> {
        let crypto = |e: &dyn std::fmt::Display| KeyError::Crypto(e.to_string());
        match &self.material {
            Material::Oct { secret } => Ok(EncodingKey::from_secret(secret)),
            Material::Ec { curve, d, .. } => {
                use p256::pkcs8::EncodePrivateKey;
                let d = d.as_ref().ok_or(KeyError::NotPrivate)?;
                let der = match curve {
                    Curve::P256 => p256::SecretKey::from_slice(d).map_err(|e| crypto(&e))?.to_pkcs8_der(),
                    Curve::P384 => p384::SecretKey::from_slice(d).map_err(|e| crypto(&e))?.to_pkcs8_der(),
                }
                .map_err(|e| crypto(&e))?;
                Ok(EncodingKey::from_ec_der(der.as_bytes()))
            }
            Material::Okp { d, .. } => {
                use ed25519_dalek::pkcs8::EncodePrivateKey;
                let seed: [u8; 32] =
                    d.as_deref().ok_or(KeyError::NotPrivate)?.try_into().map_err(|_| crypto(&"seed length"))?;
                let der = ed25519_dalek::SigningKey::from_bytes(&seed).to_pkcs8_der().map_err(|e| crypto(&e))?;
                Ok(EncodingKey::from_ed_der(der.as_bytes()))
            }
            Material::Rsa { n, e, private } => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                let p = private.as_ref().ok_or(KeyError::NotPrivate)?;
                let der = rsa_private(n, e, p)?.to_pkcs1_der().map_err(|e| crypto(&e))?;
                Ok(EncodingKey::from_rsa_der(der.as_bytes()))
            }
        }
    }
}

#[derive(Serialize)]
struct WireJwk {
    alg: &'static str,
    key_ops: Vec<String>,
    kty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    crv: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    d: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    q: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dq: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qi: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<Value>,
}

/// Checks a key ID: 1 to 128 of `A-Za-z0-9-_` (safe as a file name and in a URL).
pub fn check_kid(kid: &str) -> Result<(), KeyError> {
    let ok =
        !kid.is_empty() && kid.len() <= 128 && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(KeyError::KeyId(kid.to_string()))
    }
}

fn rsa_private(n: &[u8], e: &[u8], p: &RsaPrivate) -> Result<rsa::RsaPrivateKey, KeyError> {
    use rsa::BigUint;
    let key = rsa::RsaPrivateKey::from_components(
        BigUint::from_bytes_be(n),
        BigUint::from_bytes_be(e),
        BigUint::from_bytes_be(&p.d),
        vec![BigUint::from_bytes_be(&p.p), BigUint::from_bytes_be(&p.q)],
    )
    .map_err(|e| KeyError::Invalid(format!("RSA private key: {e}")))?;
    key.validate().map_err(|e| KeyError::Invalid(format!("RSA private key: {e}")))?;
    Ok(key)
}

/// Checks the material against the algorithm and itself, and builds the verification key.
fn validate(alg: Algorithm, material: &Material) -> Result<DecodingKey, KeyError> {
    let invalid = |m: String| Err(KeyError::Invalid(m));
    let b64 = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
    match material {
        Material::Oct { secret } => {
            if !alg.is_hmac() {
                return invalid(format!("an oct key is for HS256/384/512, not {alg}"));
            }
            if secret.len() < MIN_SECRET_LEN {
                return invalid(format!("an oct secret needs at least {MIN_SECRET_LEN} bytes"));
            }
            Ok(DecodingKey::from_secret(secret))
        }
        Material::Ec { curve, x, y, d } => {
            let want = match curve {
                Curve::P256 => Algorithm::ES256,
                Curve::P384 => Algorithm::ES384,
            };
            if alg != want {
                return invalid(format!("a {} key is for {want}, not {alg}", curve.name()));
            }
            let size = curve.size();
            if x.len() != size || y.len() != size || d.as_ref().is_some_and(|d| d.len() != size) {
                return invalid(format!("{} coordinates are {size} bytes", curve.name()));
            }
            let mut point = vec![4u8];
            point.extend_from_slice(x);
            point.extend_from_slice(y);
            let derived = match curve {
                Curve::P256 => {
                    p256::PublicKey::from_sec1_bytes(&point)
                        .map_err(|_| KeyError::Invalid("the EC point is not on P-256".into()))?;
                    d.as_ref().map(|d| p256::SecretKey::from_slice(d).map(|s| s.public_key().to_sec1_bytes().to_vec()))
                }
                Curve::P384 => {
                    p384::PublicKey::from_sec1_bytes(&point)
                        .map_err(|_| KeyError::Invalid("the EC point is not on P-384".into()))?;
                    d.as_ref().map(|d| p384::SecretKey::from_slice(d).map(|s| s.public_key().to_sec1_bytes().to_vec()))
                }
            };
            match derived {
                Some(Err(_)) => return invalid("the EC private scalar is invalid".into()),
                Some(Ok(p)) if p != point => return invalid("the EC private scalar does not match x and y".into()),
                _ => {}
            }
            DecodingKey::from_ec_components(&b64(x), &b64(y)).map_err(|e| KeyError::Crypto(e.to_string()))
        }
        Material::Okp { x, d } => {
            if alg != Algorithm::EdDSA {
                return invalid(format!("an Ed25519 key is for EdDSA, not {alg}"));
            }
            let x32: [u8; 32] =
                x.as_slice().try_into().map_err(|_| KeyError::Invalid("Ed25519 x is 32 bytes".into()))?;
            ed25519_dalek::VerifyingKey::from_bytes(&x32)
                .map_err(|_| KeyError::Invalid("Ed25519 x is not a valid point".into()))?;
            if let Some(d) = d {
                let seed: [u8; 32] =
                    d.as_slice().try_into().map_err(|_| KeyError::Invalid("Ed25519 d is 32 bytes".into()))?;
                if ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes() != x32 {
                    return invalid("the Ed25519 private key does not match x".into());
                }
            }
            DecodingKey::from_ed_components(&b64(x)).map_err(|e| KeyError::Crypto(e.to_string()))
        }
        Material::Rsa { n, e, private } => {
            if !matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ) {
                return invalid(format!("an RSA key is for RS*/PS*, not {alg}"));
            }
            let public = rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(n), rsa::BigUint::from_bytes_be(e))
                .map_err(|err| KeyError::Invalid(format!("RSA public key: {err}")))?;
            if rsa::traits::PublicKeyParts::size(&public) < 256 {
                return invalid("RSA keys need at least 2048 bits".into());
            }
            if let Some(p) = private {
                rsa_private(n, e, p)?;
            }
            Ok(DecodingKey::from_rsa_raw_components(n, e))
        }
    }
}

#[cfg(test)]
#[path = "jwk_tests.rs"]
mod tests;

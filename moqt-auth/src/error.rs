//! The two error types: [`KeyError`] for keys that cannot be loaded, written or generated, and
//! [`Refusal`] for every reason a token is not accepted (each one a distinct variant, so a relay
//! can count and log them).

use moqt_proto::access::Denied;

/// Why a key (a JWK file, a directory entry, key generation or signing) failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The text is neither JSON nor base64url-encoded JSON.
    #[error("not a JWK (JSON or base64url-encoded JSON): {0}")]
    Encoding(String),
    /// The JWK is well-formed JSON but not a key moq-token can use.
    #[error("invalid JWK: {0}")]
    Invalid(String),
    /// The algorithm is not one moq-token offers.
    #[error("unsupported algorithm {0:?} (HS256, HS384, HS512, ES256, ES384, RS256, RS384, RS512, PS256, PS384, PS512, EdDSA)")]
    Algorithm(String),
    /// The key ID has characters other than ASCII letters, digits, `-` and `_`, or is empty or
    /// longer than 128.
    #[error("invalid key ID {0:?} (1 to 128 of A-Z a-z 0-9 - _)")]
    KeyId(String),
    /// The operation needs the private half, which this key does not have.
    #[error("the key has no private part")]
    NotPrivate,
    /// A symmetric key has no public half.
    #[error("an HMAC (oct) key has no public part")]
    NoPublicPart,
    /// `key_ops` does not allow this operation.
    #[error("the key's key_ops do not allow {0}")]
    Operation(&'static str),
    /// The claims grant nothing (moq-token refuses to sign such a token).
    #[error("no publish or subscribe allowed; the token would be useless")]
    Useless,
    /// The claims grant more than the key's scope allows.
    #[error("the token would grant more than the key's scope allows")]
    ScopeExceeded,
    /// The crypto library refused the key or the signing.
    #[error("crypto: {0}")]
    Crypto(String),
}

/// Why a token was refused. Every refusal of the verifier is one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The token is longer than the verifier reads.
    #[error("the token is longer than {0} bytes")]
    TooLong(usize),
    /// Not three base64url parts with a JSON header (or the header is not an object).
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header says `alg: none` (an unsigned token).
    #[error("unsigned tokens (alg none) are refused")]
    AlgNone,
    /// The header names an algorithm moq-token does not offer.
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The header names another algorithm than the key's (this is where an HMAC token checked
    /// against a public key, the classic algorithm confusion, ends).
    #[error("the token is signed with {token}, the key is for {key}")]
    AlgorithmMismatch {
        /// The token's `alg`.
        token: String,
        /// The key's `alg`.
        key: String,
    },
    /// The header has a `crit` list (extensions this verifier does not understand).
    #[error("the token has critical header extensions")]
    Critical,
    /// A key directory needs the token to name its key.
    #[error("the token names no key (kid) and the key directory needs one")]
    MissingKid,
    /// No key with the token's `kid` is configured.
    #[error("no key with kid {0:?}")]
    UnknownKid(String),
    /// The single configured key has another `kid` than the token names.
    #[error("the token names kid {token:?}, the key is {key:?}")]
    WrongKid {
        /// The token's `kid`.
        token: String,
        /// The key's `kid`.
        key: String,
    },
    /// The key's `key_ops` do not include `verify`.
    #[error("the key may not verify (key_ops)")]
    KeyCannotVerify,
    /// The signature does not match.
    #[error("bad signature")]
    BadSignature,
    /// `exp` (plus the leeway) has passed.
    #[error("the token expired at {exp} (now {now}, leeway {leeway}s)")]
    Expired {
        /// The token's `exp`, unix seconds.
        exp: i64,
        /// The time of the check.
        now: u64,
        /// The leeway applied.
        leeway: u64,
    },
    /// `nbf` (minus the leeway) is still ahead.
    #[error("the token is not valid before {nbf} (now {now}, leeway {leeway}s)")]
    NotYetValid {
        /// The token's `nbf`, unix seconds.
        nbf: i64,
        /// The time of the check.
        now: u64,
        /// The leeway applied.
        leeway: u64,
    },
    /// The payload is not a claims object moq-dev would read (wrong types, `null` grants, both
    /// claim forms at once, an invalid pattern or prefix, too many patterns).
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    /// A claim this verifier does not know (refused unless unknown claims are ignored).
    #[error("unknown claim {0:?}")]
    UnknownClaim(String),
    /// The token names an audience (`aud`); moq-dev's verifiers refuse every audience.
    #[error("the token names an audience (aud)")]
    Audience,
    /// The claims grant neither publish nor subscribe.
    #[error("no publish or subscribe allowed; the token is useless")]
    Useless,
    /// The claims grant more than the key's scope allows.
    #[error("the token grants more than its key's scope allows")]
    ScopeExceeded,
    /// The token is valid but gives nothing at the connect path.
    #[error(transparent)]
    Denied(#[from] Denied),
}

impl Refusal {
    /// A stable lowercase name per variant, for metrics labels and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::TooLong(_) => "too_long",
            Refusal::Malformed(_) => "malformed",
            Refusal::AlgNone => "alg_none",
            Refusal::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            Refusal::AlgorithmMismatch { .. } => "algorithm_mismatch",
            Refusal::Critical => "critical",
            Refusal::MissingKid => "missing_kid",
            Refusal::UnknownKid(_) => "unknown_kid",
            Refusal::WrongKid { .. } => "wrong_kid",
            Refusal::KeyCannotVerify => "key_cannot_verify",
            Refusal::BadSignature => "bad_signature",
            Refusal::Expired { .. } => "expired",
            Refusal::NotYetValid { .. } => "not_yet_valid",
            Refusal::InvalidClaims(_) => "invalid_claims",
            Refusal::UnknownClaim(_) => "unknown_claim",
            Refusal::Audience => "audience",
            Refusal::Useless => "useless",
            Refusal::ScopeExceeded => "scope_exceeded",
            Refusal::Denied(Denied::RootMismatch { .. }) => "root_mismatch",
            Refusal::Denied(Denied::NoAccess { .. }) => "no_access",
            Refusal::Denied(Denied::Pattern(_)) => "bad_root",
        }
    }
}

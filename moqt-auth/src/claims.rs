//! Token claims in both of moq-dev's forms, and a key's scope (the ceiling on what tokens signed
//! with it may grant).
//!
//! - Prefix form (moq-token): `put` / `get`, each a string or a list of strings. A prefix `p`
//!   means the pattern `p/**` (the empty prefix: `**`, everything under the root). Slashes in a
//!   prefix are normalised; a `*` in one is refused.
//! - Pattern form (moq-auth): `publish` / `subscribe`, each a list of pattern texts.
//!
//! One document never mixes the two forms. `root` (default empty), `exp`, `iat`, `nbf` (integer
//! unix seconds, `null` meaning absent) and moq-token 0.5's `cluster` (a boolean) are read in
//! both. `iss`, `sub` and `jti` are read and ignored; `aud` is refused; any other claim is refused
//! unless the verifier is told to ignore unknown claims. A `null` grant, a duplicated claim and a
//! wrong type are refused. When writing, claims whose patterns are all subtrees use the prefix
//! form (which every moq-dev verifier reads); anything else uses the pattern form.

use moqt_proto::access::{Grant, Pattern, Patterns};
use moqt_proto::Path;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Serialize;
use serde_json::Value;

use crate::error::Refusal;

/// The most patterns one grant list may hold.
pub const MAX_PATTERNS: usize = 1024;

/// What to do with a claim this crate does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnknownClaims {
    /// Refuse the token, as moq-auth does (an unknown claim might narrow the grant).
    #[default]
    Refuse,
    /// Ignore it, as moq-token does.
    Ignore,
}

/// The claims of a verified token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// The path the patterns are relative to (`root`).
    pub root: String,
    /// What the holder may publish.
    pub publish: Patterns,
    /// What the holder may subscribe to.
    pub subscribe: Patterns,
    /// moq-token 0.5's `cluster` claim: the holder is a relay peer.
    pub cluster: bool,
    /// `exp`: unix seconds after which the token is refused.
    pub expires: Option<i64>,
    /// `iat`: unix seconds when the token was issued (informational).
    pub issued: Option<i64>,
    /// `nbf`: unix seconds before which the token is refused.
    pub not_before: Option<i64>,
}

impl Claims {
    /// Reads a claims document (the decoded JWT payload).
    pub fn from_json(text: &[u8], unknown: UnknownClaims) -> Result<Claims, Refusal> {
        let entries = entries(text).map_err(Refusal::InvalidClaims)?;
        let mut claims = Claims::default();
        let mut grants = Grants::default();
        for (name, value) in entries {
            match name.as_str() {
                "root" => claims.root = string(&name, value).map_err(Refusal::InvalidClaims)?,
                "put" | "get" | "publish" | "subscribe" => grants.read(&name, value).map_err(Refusal::InvalidClaims)?,
                "exp" => claims.expires = seconds(&name, &value)?,
                "iat" => claims.issued = seconds(&name, &value)?,
                "nbf" => claims.not_before = seconds(&name, &value)?,
                "cluster" => {
                    claims.cluster =
                        value.as_bool().ok_or_else(|| Refusal::InvalidClaims("cluster must be a boolean".into()))?
                }
                "iss" | "sub" | "jti" => {}
                "aud" => return Err(Refusal::Audience),
                _ if unknown == UnknownClaims::Ignore => {}
                _ => return Err(Refusal::UnknownClaim(name)),
            }
        }
        (claims.publish, claims.subscribe) = grants.decode().map_err(Refusal::InvalidClaims)?;
        Ok(claims)
    }

    /// The claims document, in the form described in the module docs.
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings and integers cannot fail.
        serde_json::to_string(&self.wire()).unwrap_or_default()
    }

    pub(crate) fn wire(&self) -> WireClaims {
        let (put, get, publish, subscribe) = encode(&self.publish, &self.subscribe);
        WireClaims {
            root: self.root.clone(),
            put,
            get,
            publish,
            subscribe,
            cluster: self.cluster,
            exp: self.expires,
            iat: self.issued,
            nbf: self.not_before,
        }
    }

    /// Whether the claims grant neither publish nor subscribe (moq-dev refuses such tokens).
    pub fn is_useless(&self) -> bool {
        self.publish.is_empty() && self.subscribe.is_empty()
    }

    /// The grant these claims carry. `leeway` seconds are added to the expiry, so a session ends
    /// when the verifier would start refusing the token.
    pub fn grant(&self, leeway: u64) -> Grant {
        let expires =
            self.expires.map(|exp| (i128::from(exp) + i128::from(leeway)).clamp(0, i128::from(u64::MAX)) as u64);
        Grant {
            root: Path::new(&self.root),
            publish: self.publish.clone(),
            subscribe: self.subscribe.clone(),
            cluster: self.cluster,
            expires,
        }
    }
}

/// The serialized claims, in moq-token's field order.
#[derive(Serialize)]
pub(crate) struct WireClaims {
    #[serde(skip_serializing_if = "String::is_empty")]
    root: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    put: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    get: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publish: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscribe: Option<Vec<String>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cluster: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
}

type Lists = (Option<Vec<String>>, Option<Vec<String>>, Option<Vec<String>>, Option<Vec<String>>);

/// Prefix lists when every pattern is a subtree, else pattern lists; empty lists are omitted.
fn encode(publish: &Patterns, subscribe: &Patterns) -> Lists {
    let prefixes = |ps: &Patterns| ps.iter().map(|p| p.as_prefix().map(str::to_string)).collect::<Option<Vec<_>>>();
    let some = |v: Vec<String>| (!v.is_empty()).then_some(v);
    let texts = |ps: &Patterns| ps.iter().map(|p| p.as_str().to_string()).collect::<Vec<_>>();
    match (prefixes(publish), prefixes(subscribe)) {
        (Some(put), Some(get)) => (some(put), some(get), None, None),
        _ => (None, None, some(texts(publish)), some(texts(subscribe))),
    }
}

/// A key's scope: the most any token it signs or verifies may grant (moq-token 0.7's `scope`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The path the patterns are relative to.
    pub root: String,
    /// Patterns tokens may grant to publish.
    pub publish: Patterns,
    /// Patterns tokens may grant to subscribe.
    pub subscribe: Patterns,
}

impl Scope {
    /// Reads a scope object (inside a JWK): `root` plus either `put`/`get` lists or
    /// `publish`/`subscribe` lists, nothing else, granting something.
    pub fn from_value(value: &Value) -> Result<Scope, String> {
        let Value::Object(map) = value else { return Err("scope must be an object".into()) };
        let mut scope = Scope::default();
        let mut grants = Grants { lists_only: true, ..Grants::default() };
        for (name, value) in map {
            match name.as_str() {
                "root" => scope.root = string(name, value.clone())?,
                "put" | "get" | "publish" | "subscribe" => grants.read(name, value.clone())?,
                other => return Err(format!("unknown scope field {other:?}")),
            }
        }
        (scope.publish, scope.subscribe) = grants.decode()?;
        if scope.publish.is_empty() && scope.subscribe.is_empty() {
            return Err("the scope allows nothing".into());
        }
        Ok(scope)
    }

    /// The scope object, in the same form rule as claims.
    pub fn to_value(&self) -> Value {
        let (put, get, publish, subscribe) = encode(&self.publish, &self.subscribe);
        let mut map = serde_json::Map::new();
        if !self.root.is_empty() {
            map.insert("root".into(), Value::String(self.root.clone()));
        }
        for (name, list) in [("put", put), ("get", get), ("publish", publish), ("subscribe", subscribe)] {
            if let Some(list) = list {
                map.insert(name.into(), Value::from(list));
            }
        }
        Value::Object(map)
    }

    /// Whether every pattern `claims` grants (placed below its root) is contained by one this
    /// scope allows (placed below the scope's root), role by role.
    pub fn allows(&self, claims: &Claims) -> bool {
        let covers = |granted: &Patterns, requested: &Patterns| match (
            granted.rooted(&Path::new(&self.root)),
            requested.rooted(&Path::new(&claims.root)),
        ) {
            (Ok(g), Ok(r)) => g.covers(&r),
            _ => false,
        };
        covers(&self.publish, &claims.publish) && covers(&self.subscribe, &claims.subscribe)
    }
}

/// The grant lists of one document, in whichever form they came.
#[derive(Default)]
struct Grants {
    /// A scope's prefixes are lists only; a token's may be a bare string.
    lists_only: bool,
    put: Option<Vec<String>>,
    get: Option<Vec<String>>,
    publish: Option<Vec<String>>,
    subscribe: Option<Vec<String>>,
}

impl Grants {
    fn read(&mut self, name: &str, value: Value) -> Result<(), String> {
        let list = match value {
            Value::String(s) if !self.lists_only && matches!(name, "put" | "get") => vec![s],
            Value::Array(items) => {
                if items.len() > MAX_PATTERNS {
                    return Err(format!("{name} has more than {MAX_PATTERNS} entries"));
                }
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        _ => Err(format!("{name} must hold strings")),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            Value::Null => return Err(format!("{name} is null")),
            _ => return Err(format!("{name} must be a list of strings")),
        };
        let slot = match name {
            "put" => &mut self.put,
            "get" => &mut self.get,
            "publish" => &mut self.publish,
            _ => &mut self.subscribe,
        };
        *slot = Some(list);
        Ok(())
    }

    fn decode(self) -> Result<(Patterns, Patterns), String> {
        let legacy = self.put.is_some() || self.get.is_some();
        if legacy && (self.publish.is_some() || self.subscribe.is_some()) {
            return Err("mixes the prefix form (put/get) with the pattern form (publish/subscribe)".into());
        }
        if legacy {
            let subtrees = |list: Option<Vec<String>>| {
                list.unwrap_or_default()
                    .iter()
                    .map(|p| Pattern::subtree(&Path::new(p)).map_err(|e| format!("prefix {p:?}: {e}")))
                    .collect::<Result<Patterns, _>>()
            };
            return Ok((subtrees(self.put)?, subtrees(self.get)?));
        }
        let patterns = |list: Option<Vec<String>>| {
            list.unwrap_or_default()
                .iter()
                .map(|p| p.parse::<Pattern>().map_err(|e| format!("pattern {p:?}: {e}")))
                .collect::<Result<Patterns, _>>()
        };
        Ok((patterns(self.publish)?, patterns(self.subscribe)?))
    }
}

fn string(name: &str, value: Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(format!("{name} must be a string")),
    }
}

fn seconds(name: &str, value: &Value) -> Result<Option<i64>, Refusal> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => {
            n.as_i64().map(Some).ok_or_else(|| Refusal::InvalidClaims(format!("{name} must be whole unix seconds")))
        }
        _ => Err(Refusal::InvalidClaims(format!("{name} must be a number"))),
    }
}

/// The members of a JSON object, in order, refusing a duplicated name (serde_json's `Value`
/// would keep only the last, and two verifiers could then read two different grants).
fn entries(text: &[u8]) -> Result<Vec<(String, Value)>, String> {
    struct Entries;
    impl<'de> Visitor<'de> for Entries {
        type Value = Vec<(String, Value)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out: Vec<(String, Value)> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            while let Some((name, value)) = map.next_entry::<String, Value>()? {
                if !seen.insert(name.clone()) {
                    return Err(serde::de::Error::custom(format!("duplicate claim {name:?}")));
                }
                out.push((name, value));
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(text);
    let out = (&mut de).deserialize_map(Entries).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;

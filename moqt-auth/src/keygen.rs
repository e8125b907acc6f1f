//! Key generation for every algorithm, with the sizes moq-token uses: HMAC secrets of 32, 48 and
//! 64 bytes for HS256/384/512, 2048-bit RSA for RS*/PS*, P-256 and P-384 for ES256/384, Ed25519
//! for EdDSA. Randomness comes from the operating system.

use rand::rngs::OsRng;
use rand::RngCore;

use crate::error::KeyError;
use crate::jwk::{Algorithm, Curve, Key, Material, RsaPrivate};

/// A random key ID: 16 lowercase hex digits (as moq-token makes them).
pub fn random_kid() -> String {
    let mut bytes = [0u8; 8];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Generates a private key for `alg` (sign and verify), with the given key ID.
pub fn generate(alg: Algorithm, kid: Option<String>) -> Result<Key, KeyError> {
    let secret = |len: usize| {
        let mut k = vec![0u8; len];
        OsRng.fill_bytes(&mut k);
        Material::Oct { secret: k }
    };
    let material = match alg {
        Algorithm::HS256 => secret(32),
        Algorithm::HS384 => secret(48),
        Algorithm::HS512 => secret(64),
        Algorithm::ES256 => {
            let d = p256::SecretKey::random(&mut OsRng);
            let point = d.public_key().to_sec1_bytes();
            ec(Curve::P256, &point, d.to_bytes().to_vec())
        }
        Algorithm::ES384 => {
            let d = p384::SecretKey::random(&mut OsRng);
            let point = d.public_key().to_sec1_bytes();
            ec(Curve::P384, &point, d.to_bytes().to_vec())
        }
        Algorithm::EdDSA => {
            let mut seed = [0u8; 32];
            OsRng.fill_bytes(&mut seed);
            let x = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes();
            Material::Okp { x: x.to_vec(), d: Some(seed.to_vec()) }
        }
        _ => rsa_2048()?,
    };
    Key::new(alg, material, kid)
}

/// EC material from an uncompressed SEC1 point (`04 || x || y`) and the scalar.
fn ec(curve: Curve, point: &[u8], d: Vec<u8>) -> Material {
    let half = (point.len() - 1) / 2;
    Material::Ec { curve, x: point[1..1 + half].to_vec(), y: point[1 + half..].to_vec(), d: Some(d) }
}

fn rsa_2048() -> Result<Material, KeyError> {
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let crypto = |e: rsa::Error| KeyError::Crypto(e.to_string());
    let mut key = rsa::RsaPrivateKey::new(&mut OsRng, 2048).map_err(crypto)?;
    key.precompute().map_err(crypto)?;
    let primes = key.primes();
    let (Some(p), Some(q)) = (primes.first(), primes.get(1)) else {
        return Err(KeyError::Crypto("RSA key without two primes".into()));
    };
    let (Some(dp), Some(dq), Some(qi)) = (key.dp(), key.dq(), key.qinv()) else {
        return Err(KeyError::Crypto("RSA key without CRT values".into()));
    };
    Ok(Material::Rsa {
        n: key.n().to_bytes_be(),
        e: key.e().to_bytes_be(),
        private: Some(RsaPrivate {
            d: key.d().to_bytes_be(),
            p: p.to_bytes_be(),
            q: q.to_bytes_be(),
            dp: dp.to_bytes_be(),
            dq: dq.to_bytes_be(),
            qi: qi.to_bytes_be().1,
        }),
    })
}

//! Serde helpers for catalog fields: byte strings as hex, and numbers written as integers when
//! they are whole (Go's `encoding/json` refuses `30.0` for an integer field; JavaScript and
//! serde read `30` as a float just fine).

use serde::{de, Deserialize, Deserializer, Serializer};

/// Writes a float as a JSON integer when it is whole and in the safe integer range.
pub(crate) fn write_number<S: Serializer>(value: f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
        if value >= 0.0 {
            serializer.serialize_u64(value as u64)
        } else {
            serializer.serialize_i64(value as i64)
        }
    } else {
        serializer.serialize_f64(value)
    }
}

/// `Option<f64>` written with [`write_number`].
pub(crate) mod number_opt {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => write_number(*v, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
        Option::<f64>::deserialize(deserializer)
    }
}

/// `Option<Bytes>` as a hex string (hang's encoding of WebCodecs `description`).
pub(crate) mod hex_opt {
    use bytes::Bytes;

    use super::*;

    pub(crate) fn serialize<S: Serializer>(value: &Option<Bytes>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => serializer.serialize_str(&hex::encode(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Bytes>, D::Error> {
        let Some(text) = Option::<String>::deserialize(deserializer)? else {
            return Ok(None);
        };
        let bytes = hex::decode(&text).map_err(|e| de::Error::custom(format!("description is not hex: {e}")))?;
        Ok(Some(Bytes::from(bytes)))
    }
}

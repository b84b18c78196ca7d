//! Payload encryption: bundles, signals, results and activity inputs are
//! AES-256-GCM ciphertext at rest in Temporal, and `handoff codec-server`
//! lets Temporal UI decrypt them for operators who hold the bearer token.
//!
//! Keys come from `HANDOFF_CODEC_KEYS` as `id:base64key,id:base64key`: the
//! first encrypts, every one decrypts, so a key rotates by putting the new
//! one first and keeping the old ones until no history needs them. An
//! encrypted payload keeps the key id in its metadata beside its encoding.

use std::collections::HashMap;
use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::future::BoxFuture;
use prost::Message as _;
use temporalio_common::data_converters::{
    DataConverter, DefaultFailureConverter, PayloadCodec, PayloadConversionError, PayloadConverter,
    SerializationContextData,
};
use temporalio_common::protos::temporal::api::common::v1::Payload;

/// The encoding of an encrypted payload.
pub(crate) const ENCRYPTED_ENCODING: &[u8] = b"binary/encrypted";
const KEY_ID: &str = "encryption-key-id";
const NONCE_LEN: usize = 12;

/// Why keys or payloads could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    #[error("HANDOFF_CODEC_KEYS: {0}")]
    Keys(String),
    #[error("payload encrypted with unknown key id {0:?}: add it to HANDOFF_CODEC_KEYS")]
    UnknownKey(String),
    #[error("payload cannot be decrypted: wrong key or tampered data")]
    Decrypt,
    #[error("decrypted payload is not a payload")]
    Inner(#[source] prost::DecodeError),
}

/// The keys in force: the first encrypts, all decrypt.
#[derive(Clone)]
pub(crate) struct Keys {
    current: String,
    ciphers: Arc<HashMap<String, Aes256Gcm>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        let mut ids: Vec<&String> = self.ciphers.keys().collect();
        ids.sort();
        f.debug_struct("Keys")
            .field("current", &self.current)
            .field("ids", &ids)
            .finish()
    }
}

impl Keys {
    /// Parses `id:base64key[,id:base64key...]`; each key is 32 bytes.
    pub(crate) fn parse(text: &str) -> Result<Self, CodecError> {
        let mut ciphers = HashMap::new();
        let mut current = None;
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, key) = entry
                .split_once(':')
                .ok_or_else(|| CodecError::Keys(format!("{entry:?} is not id:base64key")))?;
            let id = id.trim();
            if id.is_empty() {
                return Err(CodecError::Keys("a key id is empty".into()));
            }
            let bytes = STANDARD
                .decode(key.trim())
                .map_err(|_| CodecError::Keys(format!("key {id:?} is not base64")))?;
            if bytes.len() != 32 {
                return Err(CodecError::Keys(format!(
                    "key {id:?} has {} bytes; AES-256 needs 32 (e.g. `openssl rand -base64 32`)",
                    bytes.len()
                )));
            }
            let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes));
            if ciphers.insert(id.to_owned(), cipher).is_some() {
                return Err(CodecError::Keys(format!("key id {id:?} appears twice")));
            }
            current.get_or_insert_with(|| id.to_owned());
        }
        let current = current.ok_or_else(|| CodecError::Keys("no key given".into()))?;
        Ok(Self {
            current,
            ciphers: Arc::new(ciphers),
        })
    }

    /// Encrypts one payload with the current key.
    pub(crate) fn encrypt(&self, payload: &Payload) -> Payload {
        let cipher = &self.ciphers[&self.current];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut data = nonce.to_vec();
        let sealed = cipher
            .encrypt(&nonce, payload.encode_to_vec().as_slice())
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        data.extend(sealed);
        Payload {
            metadata: HashMap::from([
                ("encoding".to_owned(), ENCRYPTED_ENCODING.to_vec()),
                (KEY_ID.to_owned(), self.current.as_bytes().to_vec()),
            ]),
            data,
            ..Default::default()
        }
    }

    /// Decrypts one payload; a payload that is not encrypted passes through.
    pub(crate) fn decrypt(&self, payload: Payload) -> Result<Payload, CodecError> {
        if payload.metadata.get("encoding").map(Vec::as_slice) != Some(ENCRYPTED_ENCODING) {
            return Ok(payload);
        }
        let id = payload
            .metadata
            .get(KEY_ID)
            .map(|id| String::from_utf8_lossy(id).into_owned())
            .unwrap_or_default();
        let cipher = self
            .ciphers
            .get(&id)
            .ok_or_else(|| CodecError::UnknownKey(id.clone()))?;
        if payload.data.len() < NONCE_LEN {
            return Err(CodecError::Decrypt);
        }
        let (nonce, sealed) = payload.data.split_at(NONCE_LEN);
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| CodecError::Decrypt)?;
        Payload::decode(plain.as_slice()).map_err(CodecError::Inner)
    }

    /// A data converter whose codec encrypts with these keys.
    pub(crate) fn data_converter(&self) -> DataConverter {
        DataConverter::new(
            PayloadConverter::default(),
            DefaultFailureConverter::default(),
            EncryptionCodec(self.clone()),
        )
    }
}

/// The SDK's codec hook over [`Keys`].
struct EncryptionCodec(Keys);

impl PayloadCodec for EncryptionCodec {
    fn encode(
        &self,
        _context: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let encoded = payloads.iter().map(|p| self.0.encrypt(p)).collect();
        Box::pin(async move { Ok(encoded) })
    }

    fn decode(
        &self,
        _context: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let decoded: Result<Vec<Payload>, CodecError> =
            payloads.into_iter().map(|p| self.0.decrypt(p)).collect();
        Box::pin(
            async move { decoded.map_err(|e| PayloadConversionError::EncodingError(Box::new(e))) },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    fn plain() -> Payload {
        Payload {
            metadata: HashMap::from([("encoding".to_owned(), b"json/plain".to_vec())]),
            data: br#"{"account":{"name":"Example Corp"}}"#.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn a_payload_round_trips_and_is_unreadable_in_between() {
        let keys = Keys::parse(&format!("k1:{}", key(1))).unwrap();
        let sealed = keys.encrypt(&plain());
        assert!(!String::from_utf8_lossy(&sealed.data).contains("Example"));
        assert_eq!(sealed.metadata["encryption-key-id"], b"k1");
        assert_eq!(keys.decrypt(sealed).unwrap(), plain());
    }

    #[test]
    fn a_rotated_key_encrypts_while_the_old_one_still_decrypts() {
        let old = Keys::parse(&format!("k1:{}", key(1))).unwrap();
        let rotated = Keys::parse(&format!("k2:{},k1:{}", key(2), key(1))).unwrap();
        let before = old.encrypt(&plain());
        assert_eq!(rotated.decrypt(before).unwrap(), plain());
        let after = rotated.encrypt(&plain());
        assert_eq!(after.metadata["encryption-key-id"], b"k2");
        assert!(matches!(old.decrypt(after), Err(CodecError::UnknownKey(id)) if id == "k2"));
    }

    #[test]
    fn tampered_data_is_refused() {
        let keys = Keys::parse(&format!("k1:{}", key(1))).unwrap();
        let mut sealed = keys.encrypt(&plain());
        let last = sealed.data.len() - 1;
        sealed.data[last] ^= 1;
        assert!(matches!(keys.decrypt(sealed), Err(CodecError::Decrypt)));
    }

    #[test]
    fn bad_key_lists_say_what_to_fix() {
        let short = Keys::parse(&format!("k1:{}", STANDARD.encode([1u8; 16])));
        assert!(short.unwrap_err().to_string().contains("32"));
        assert!(Keys::parse("k1").is_err());
        assert!(Keys::parse("").is_err());
        assert!(Keys::parse(&format!("a:{},a:{}", key(1), key(2))).is_err());
        let debug = format!("{:?}", Keys::parse(&format!("k1:{}", key(7))).unwrap());
        assert!(!debug.contains(&key(7)), "{debug}");
    }

    #[test]
    fn unencrypted_payloads_pass_through_decoding() {
        let keys = Keys::parse(&format!("k1:{}", key(1))).unwrap();
        assert_eq!(keys.decrypt(plain()).unwrap(), plain());
    }
}

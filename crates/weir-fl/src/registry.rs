//! The model registry in a [`Store`] (the bucket on AWS and LocalStack, a directory on a
//! laptop): versioned models that never change once written, and one pointer to the current
//! one.
//!
//! ```text
//! registry/latest.json            Pointer: version, open round, model key, SHA-256, signature
//! registry/v000003/model.onnx     the model (same graph, new weights); written once
//! registry/v000003/card.json      Card: round, nodes included and excluded with reasons, metrics
//! ```
//!
//! Publishing version N+1 writes the model with `If-None-Match: *` (the claim: of two merges
//! racing, exactly one writes it), then the card, then moves the pointer with `If-Match` on
//! the pointer it read. Readers ([`Registry::current`]) check the pointer's signature when they
//! trust a registry key, the model's SHA-256 against the pointer, that it parses as a weir
//! model, and, when they already run one, that it has the same features and classes: a
//! tampered file is refused and the caller keeps its model.

use serde::{Deserialize, Serialize};
use weir_model::Mlp;
use weir_store::{Condition, Store, StoreError};

use crate::update::{now_unix, sha256_hex, signature_ok, SigningKey};

/// The pointer's key.
pub const LATEST: &str = "registry/latest.json";

/// Where a registry in a store keeps its own signing key when no key file is given: under
/// `fl/keys/`, which only the merge reads (the deploy's IAM) and only the operator writes.
/// `weir fl init` makes one there, so every pointer the merge publishes is signed.
pub const KEY_OBJECT: &str = "fl/keys/registry.key";

/// The registry key kept in `store` ([`KEY_OBJECT`]); made and written (`If-None-Match`: two
/// inits keep one key) when `create` and there is none.
pub fn stored_key(store: &dyn Store, create: bool) -> Result<Option<SigningKey>, RegistryError> {
    if let Some((b, _)) = store.get_versioned(KEY_OBJECT)? {
        return SigningKey::from_pkcs8("registry", &b)
            .map(Some)
            .map_err(|e| RegistryError::Refused(format!("{KEY_OBJECT}: {e}")));
    }
    if !create {
        return Ok(None);
    }
    let k = SigningKey::generate("registry").map_err(|e| RegistryError::Refused(e.to_string()))?;
    if store.put_if(KEY_OBJECT, k.to_bytes(), &Condition::Absent)? {
        Ok(Some(k))
    } else {
        stored_key(store, false)
    }
}

/// The key of version `v`'s model.
pub fn model_key(v: u64) -> String {
    format!("registry/v{v:06}/model.onnx")
}

/// The key of version `v`'s card.
pub fn card_key(v: u64) -> String {
    format!("registry/v{v:06}/card.json")
}

/// Errors of the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No pointer: nothing was ever published (`weir fl init`).
    #[error("the registry is empty: no {LATEST} (publish a first model with `weir fl init`)")]
    Empty,
    /// What the registry holds cannot be trusted or read; the caller keeps what it has.
    #[error("refused: {0}")]
    Refused(String),
    /// Another writer moved the pointer first.
    #[error("lost a race: {0}")]
    Raced(String),
}

/// The current model: which version, which round is open for updates, where the model is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pointer {
    /// Version of the current model.
    pub version: u64,
    /// The round open for updates from this model (advances when a round closes without a
    /// new version, and on rollback, so an old round's updates never count twice).
    pub round: u64,
    /// The model object's key.
    pub model_key: String,
    /// SHA-256 of the model object, hex.
    pub sha256: String,
    /// When this pointer was written (Unix seconds): the open round's start, for deadlines.
    pub opened_unix: u64,
    /// Why the pointer moved ("published", "rollback to 2", "round 4 closed: gate").
    pub reason: String,
    /// Ed25519 signature by the registry key of this pointer with `signature` empty, hex;
    /// empty when the registry signs nothing.
    #[serde(default)]
    pub signature: String,
}

impl Pointer {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut p = self.clone();
        p.signature.clear();
        serde_json::to_vec(&p).unwrap_or_default()
    }

    /// Sign with the registry key.
    pub fn sign(&mut self, key: &SigningKey) {
        self.signature = key.sign_hex(&self.signed_bytes());
    }

    /// Whether the registry key `public_hex` signed this pointer.
    pub fn verify(&self, public_hex: &str) -> bool {
        !self.signature.is_empty()
            && signature_ok(public_hex, &self.signed_bytes(), &self.signature)
    }
}

/// What a version's card says: where the model came from and how it did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Card {
    /// The version.
    pub version: u64,
    /// The version it was made from.
    pub base_version: Option<u64>,
    /// The round that made it.
    pub round: Option<u64>,
    /// How (e.g. "initial model", "trimmed:0.2 over 3 updates").
    pub made_by: String,
    /// Nodes whose updates went in, with their (capped) sample counts.
    pub included: Vec<Included>,
    /// Updates refused, with their reasons.
    pub excluded: Vec<Excluded>,
    /// Flows behind the included updates (as claimed, capped).
    pub samples: u64,
    /// Metrics on the server's evaluation set: this version's, and the base's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<GateMetrics>,
    /// Unix seconds.
    pub created_unix: u64,
}

/// A node's update that went into a version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Included {
    /// The node.
    pub node: String,
    /// Its update's nonce.
    pub nonce: String,
    /// Samples it claimed.
    pub samples: u64,
    /// Its update's norm.
    pub norm: f32,
    /// Its cosine with the server's reference update, when screened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosine: Option<f32>,
}

/// An update left out, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Excluded {
    /// The node it claimed to be from (or the object key when unreadable).
    pub node: String,
    /// The update's object key.
    pub key: String,
    /// Short tag ([`crate::update::Rejection::tag`]).
    pub tag: String,
    /// The reason, in words.
    pub reason: String,
}

/// The gate's figures: the candidate against the current model on the server's evaluation set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateMetrics {
    /// Rows in the evaluation set.
    pub rows: usize,
    /// Macro-F1 of the candidate.
    pub macro_f1: f64,
    /// Macro-F1 of the model it would replace.
    pub base_macro_f1: f64,
    /// Largest drop allowed.
    pub margin: f64,
    /// Whether it passed.
    pub passed: bool,
}

/// The registry over a store.
pub struct Registry<'a> {
    store: &'a dyn Store,
    trust: Option<String>,
}

/// A model read from the registry and checked.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The pointer that named it.
    pub pointer: Pointer,
    /// The ONNX bytes.
    pub bytes: Vec<u8>,
    /// The model.
    pub model: Mlp,
}

impl<'a> Registry<'a> {
    /// The registry in `store`; `trust`: the registry's public key (hex), when pointers must
    /// be signed by it.
    pub fn new(store: &'a dyn Store, trust: Option<String>) -> Self {
        Registry { store, trust }
    }

    /// The pointer as stored, with its version for a compare-and-swap; `None` when empty.
    pub fn pointer(&self) -> Result<Option<(Pointer, String)>, RegistryError> {
        let Some((bytes, etag)) = self.store.get_versioned(LATEST)? else {
            return Ok(None);
        };
        let p: Pointer = serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::Refused(format!("{LATEST} is not a pointer: {e}")))?;
        if let Some(pk) = &self.trust {
            if !p.verify(pk) {
                return Err(RegistryError::Refused(format!(
                    "{LATEST} is not signed by the trusted registry key"
                )));
            }
        }
        Ok(Some((p, etag)))
    }

    /// Read and check the model a pointer names: SHA-256, a weir model, and (when `like` is
    /// given) the same features and classes as `like`.
    pub fn load(&self, p: &Pointer, like: Option<&Mlp>) -> Result<Loaded, RegistryError> {
        let bytes = self.store.get(&p.model_key)?;
        let got = sha256_hex(&bytes);
        if got != p.sha256 {
            return Err(RegistryError::Refused(format!(
                "{} has SHA-256 {got}, the pointer says {} (changed after publishing?)",
                p.model_key, p.sha256
            )));
        }
        let model = weir_model::read_model(&bytes)
            .map_err(|e| RegistryError::Refused(format!("{}: {e}", p.model_key)))?;
        if let Some(like) = like {
            if model.info.features != like.info.features || model.info.classes != like.info.classes
            {
                return Err(RegistryError::Refused(format!(
                    "{} has other features or classes than the running model",
                    p.model_key
                )));
            }
        }
        Ok(Loaded {
            pointer: p.clone(),
            bytes,
            model,
        })
    }

    /// The current model, checked.
    pub fn current(&self, like: Option<&Mlp>) -> Result<Loaded, RegistryError> {
        let (p, _) = self.pointer()?.ok_or(RegistryError::Empty)?;
        self.load(&p, like)
    }

    /// Publish `model` as version 0 when the registry is empty; returns the pointer either
    /// way (an existing registry is left as it is).
    pub fn init(&self, model: &Mlp, key: Option<&SigningKey>) -> Result<Pointer, RegistryError> {
        if let Some((p, _)) = self.pointer()? {
            return Ok(p);
        }
        let card = Card {
            version: 0,
            made_by: format!("initial model ({})", model.info.model_version),
            created_unix: now_unix(),
            ..Card::default()
        };
        match self.publish(None, 0, 1, model, &card, key)? {
            Some(p) => Ok(p),
            None => self.pointer()?.map(|(p, _)| p).ok_or(RegistryError::Empty),
        }
    }

    /// Publish `model` as `version`, opening `round`: the model with `If-None-Match: *`, the
    /// card, then the pointer with `If-Match` on `prev` (the pointer's version as read, `None`
    /// for an empty registry). `Ok(None)` when another merge published this version first
    /// (nothing of this call's is then visible).
    pub fn publish(
        &self,
        prev: Option<&str>,
        version: u64,
        round: u64,
        model: &Mlp,
        card: &Card,
        key: Option<&SigningKey>,
    ) -> Result<Option<Pointer>, RegistryError> {
        let bytes = model.to_onnx();
        let mk = model_key(version);
        if !self.store.put_if(&mk, &bytes, &Condition::Absent)? {
            return Ok(None);
        }
        let card_bytes = serde_json::to_vec_pretty(card).unwrap_or_default();
        self.store.put(&card_key(version), &card_bytes)?;
        let mut p = Pointer {
            version,
            round,
            model_key: mk,
            sha256: sha256_hex(&bytes),
            opened_unix: now_unix(),
            reason: if version == 0 {
                "initial model".into()
            } else {
                format!("published from round {}", card.round.unwrap_or(round))
            },
            signature: String::new(),
        };
        self.move_pointer(prev, &mut p, key)?;
        Ok(Some(p))
    }

    /// Write the pointer (signed when a key is given) if it is still at `prev`.
    pub fn move_pointer(
        &self,
        prev: Option<&str>,
        p: &mut Pointer,
        key: Option<&SigningKey>,
    ) -> Result<(), RegistryError> {
        if let Some(k) = key {
            p.sign(k);
        }
        let cond = match prev {
            Some(v) => Condition::Version(v.to_string()),
            None => Condition::Absent,
        };
        let bytes = serde_json::to_vec_pretty(p).unwrap_or_default();
        if self.store.put_if(LATEST, &bytes, &cond)? {
            Ok(())
        } else {
            Err(RegistryError::Raced(format!(
                "{LATEST} moved while version {} was being published",
                p.version
            )))
        }
    }

    /// The versions present, ascending.
    pub fn versions(&self) -> Result<Vec<u64>, RegistryError> {
        Ok(self
            .store
            .children("registry/")?
            .iter()
            .filter_map(|c| c.strip_prefix('v')?.parse().ok())
            .collect())
    }

    /// A version's card.
    pub fn card(&self, version: u64) -> Result<Card, RegistryError> {
        let b = self.store.get(&card_key(version))?;
        serde_json::from_slice(&b)
            .map_err(|e| RegistryError::Refused(format!("{}: {e}", card_key(version))))
    }

    /// Point the registry back at `version` (which must exist and check out); the open round
    /// advances so updates made for the abandoned version are refused as stale.
    pub fn rollback(
        &self,
        version: u64,
        key: Option<&SigningKey>,
    ) -> Result<Pointer, RegistryError> {
        let (cur, etag) = self.pointer()?.ok_or(RegistryError::Empty)?;
        let bytes = match self.store.get(&model_key(version)) {
            Ok(b) => b,
            Err(_) => {
                return Err(RegistryError::Refused(format!(
                    "version {version} is not in the registry (versions: {:?})",
                    self.versions()?
                )))
            }
        };
        weir_model::read_model(&bytes)
            .map_err(|e| RegistryError::Refused(format!("version {version}: {e}")))?;
        let mut p = Pointer {
            version,
            round: cur.round + 1,
            model_key: model_key(version),
            sha256: sha256_hex(&bytes),
            opened_unix: now_unix(),
            reason: format!("rollback from version {} to {version}", cur.version),
            signature: String::new(),
        };
        self.move_pointer(Some(&etag), &mut p, key)?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_store::LocalStore;

    #[test]
    fn publish_once_load_checked_and_roll_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let key = SigningKey::from_seed("registry", [3; 32]).unwrap();
        let reg = Registry::new(&store, Some(key.public_hex()));
        assert!(matches!(reg.current(None), Err(RegistryError::Empty)));
        let m0 = weir_model::test_model(4, 6, 3, 1);
        let p0 = reg.init(&m0, Some(&key)).unwrap();
        assert_eq!((p0.version, p0.round), (0, 1));
        assert_eq!(
            reg.init(&m0, Some(&key)).unwrap(),
            p0,
            "init twice is a no-op"
        );
        let got = reg.current(Some(&m0)).unwrap();
        assert_eq!(got.model, m0);

        // Two merges race for version 1: exactly one publishes.
        let (_, etag) = reg.pointer().unwrap().unwrap();
        let m1 = weir_model::test_model(4, 6, 3, 2);
        let m1b = weir_model::test_model(4, 6, 3, 3);
        let card = Card {
            version: 1,
            round: Some(1),
            ..Card::default()
        };
        let a = reg
            .publish(Some(&etag), 1, 2, &m1, &card, Some(&key))
            .unwrap();
        let b = reg
            .publish(Some(&etag), 1, 2, &m1b, &card, Some(&key))
            .unwrap();
        assert!(a.is_some() && b.is_none());
        assert_eq!(reg.current(None).unwrap().model, m1);
        assert_eq!(reg.versions().unwrap(), vec![0, 1]);

        // A tampered model file is refused; the pointer still names it, nothing else changes.
        let mut bytes = store.get(&model_key(1)).unwrap();
        let n = bytes.len();
        bytes[n - 100] ^= 0x40;
        store.put(&model_key(1), &bytes).unwrap();
        let e = reg.current(None).unwrap_err().to_string();
        assert!(e.contains("SHA-256"), "{e}");

        // A registry key kept in the store is made once and read back the same.
        let made = stored_key(&store, true).unwrap().unwrap();
        let again = stored_key(&store, true).unwrap().unwrap();
        assert_eq!(made.public_hex(), again.public_hex());
        // A pointer not signed by the trusted key is refused.
        let untrusted = Registry::new(
            &store,
            Some(SigningKey::from_seed("x", [4; 32]).unwrap().public_hex()),
        );
        assert!(untrusted
            .current(None)
            .unwrap_err()
            .to_string()
            .contains("not signed"));

        // Rollback to 0 is one call; the round moves on.
        let p = reg.rollback(0, Some(&key)).unwrap();
        assert_eq!((p.version, p.round), (0, 3));
        assert_eq!(reg.current(None).unwrap().model, m0);
        assert!(reg
            .rollback(7, Some(&key))
            .unwrap_err()
            .to_string()
            .contains("not in the registry"));
    }
}

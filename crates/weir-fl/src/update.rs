//! An edge node's update: the clipped parameter difference Δ = w_local − w_global as
//! little-endian f32 (the payload), and a manifest saying who made it from which model
//! (node id, base version, round, nonce, sample and class counts, shapes, norm, the payload's
//! SHA-256), signed with the node's Ed25519 key. Traffic and features never leave the node.
//!
//! The envelope keeps the manifest as the exact string that was signed, so verification
//! checks those bytes, not a re-serialization of them.

use std::collections::HashMap;

use ring::rand::SecureRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

use crate::params;

/// Version of the manifest format.
pub const FORMAT: u32 = 1;

/// An Ed25519 signing key with the name it signs as (a node, or the registry).
pub struct SigningKey {
    /// Who signs.
    pub id: String,
    pkcs8: Vec<u8>,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, {})", self.id, self.public_hex())
    }
}

/// A key that could not be made or read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

impl SigningKey {
    /// A new key from the operating system's random source.
    pub fn generate(id: &str) -> Result<Self, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| KeyError("no random source to make a key with".into()))?;
        Self::from_pkcs8(id, doc.as_ref())
    }

    /// A key from 32 seed bytes (tests and simulations: reproducible node keys).
    pub fn from_seed(id: &str, seed: [u8; 32]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| KeyError("not an Ed25519 seed".into()))?;
        // Keep the seed as the stored form for these keys (32 bytes, no PKCS#8 wrapper).
        Ok(SigningKey {
            id: id.to_string(),
            pkcs8: seed.to_vec(),
            pair,
        })
    }

    /// A key from its stored bytes ([`SigningKey::to_bytes`]): PKCS#8 v2, or a 32-byte seed.
    pub fn from_pkcs8(id: &str, bytes: &[u8]) -> Result<Self, KeyError> {
        if let Ok(seed) = <[u8; 32]>::try_from(bytes) {
            return Self::from_seed(id, seed);
        }
        let pair = Ed25519KeyPair::from_pkcs8(bytes)
            .map_err(|e| KeyError(format!("not an Ed25519 PKCS#8 key: {e}")))?;
        Ok(SigningKey {
            id: id.to_string(),
            pkcs8: bytes.to_vec(),
            pair,
        })
    }

    /// A key from a file holding its stored bytes; the error names the file.
    pub fn read_file(id: &str, path: &std::path::Path) -> Result<Self, KeyError> {
        let b = std::fs::read(path).map_err(|e| KeyError(format!("{}: {e}", path.display())))?;
        Self::from_pkcs8(id, &b).map_err(|e| KeyError(format!("{}: {e}", path.display())))
    }

    /// The stored form of the key (keep it secret).
    pub fn to_bytes(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key, hex: what an operator registers.
    pub fn public_hex(&self) -> String {
        hex::encode(self.pair.public_key().as_ref())
    }

    /// Sign `msg`; the signature in hex.
    pub fn sign_hex(&self, msg: &[u8]) -> String {
        hex::encode(self.pair.sign(msg).as_ref())
    }
}

/// Whether `signature_hex` is `public_hex`'s signature of `msg`.
pub fn signature_ok(public_hex: &str, msg: &[u8], signature_hex: &str) -> bool {
    let (Ok(pk), Ok(sig)) = (hex::decode(public_hex.trim()), hex::decode(signature_hex)) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, pk)
        .verify(msg, &sig)
        .is_ok()
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// 16 random bytes, hex.
pub fn nonce() -> String {
    let mut b = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = t.to_le_bytes();
    }
    hex::encode(b)
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The local differential privacy a node applied: Gaussian noise of standard deviation
/// `noise_multiplier × clip` added to its clipped update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Privacy {
    /// σ / clip.
    pub noise_multiplier: f32,
    /// The δ of the stated guarantee.
    pub delta: f64,
    /// ε of this one update at that δ (Gaussian mechanism, through zero-concentrated DP:
    /// ρ = 1 / (2 z²), ε = ρ + 2 √(ρ ln(1/δ))).
    pub epsilon: f64,
}

impl Privacy {
    /// The guarantee of `rounds` updates each with noise multiplier `z` (ρ adds up over
    /// rounds), at `delta`.
    pub fn of(z: f32, delta: f64, rounds: u32) -> Privacy {
        Privacy {
            noise_multiplier: z,
            delta,
            epsilon: epsilon(z, delta, rounds),
        }
    }
}

/// ε of `rounds` releases of the Gaussian mechanism with noise multiplier `z` at `delta`
/// (zCDP composition; infinite without noise).
pub fn epsilon(z: f32, delta: f64, rounds: u32) -> f64 {
    if z <= 0.0 {
        return f64::INFINITY;
    }
    let rho = f64::from(rounds.max(1)) / (2.0 * f64::from(z).powi(2));
    rho + 2.0 * (rho * (1.0 / delta).ln()).sqrt()
}

/// What a node says about its update. Signed; the merge function checks every field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The node's registered id.
    pub node: String,
    /// The registry version the node trained from.
    pub base_version: u64,
    /// The round it answers.
    pub round: u64,
    /// Random, once per update: with node and round, it names the update.
    pub nonce: String,
    /// Flows the node trained on (the merge caps what it believes of this).
    pub samples: u64,
    /// Those flows per class, in the model's class order.
    pub class_counts: Vec<u64>,
    /// Layer shapes `[outputs, inputs]` of the parameters.
    pub shapes: Vec<[usize; 2]>,
    /// L2 norm of the payload as uploaded (after clipping and any noise).
    pub norm: f32,
    /// The clipping bound the node applied.
    pub clip: f32,
    /// Local differential privacy, when the node added noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<Privacy>,
    /// When the update was made (Unix seconds).
    pub created_unix: u64,
    /// SHA-256 of the payload, hex.
    pub payload_sha256: String,
}

/// The uploaded manifest: the exact signed JSON and its signature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The manifest's JSON, as signed.
    pub manifest: String,
    /// Ed25519 signature of `manifest`'s bytes by the node's key, hex. Empty: unsigned.
    #[serde(default)]
    pub signature: String,
}

/// The payload bytes of an update vector.
pub fn encode_payload(delta: &[f32]) -> Vec<u8> {
    delta.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// An update vector from payload bytes; `None` when the length is not a whole number of f32.
pub fn decode_payload(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// How a node makes its update.
#[derive(Clone, Debug)]
pub struct UpdateOptions {
    /// L2 bound the update is clipped to.
    pub clip: f32,
    /// Local DP: Gaussian noise of `noise_multiplier × clip` (0: none).
    pub noise_multiplier: f32,
    /// δ for the stated ε.
    pub delta: f64,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        UpdateOptions {
            clip: DEFAULT_CLIP,
            noise_multiplier: 0.0,
            delta: 1e-5,
        }
    }
}

/// The default L2 bound on an update (a few epochs of fine-tuning move the 256×256 MLP by
/// about 1-4; a model-replacement attack by far more).
pub const DEFAULT_CLIP: f32 = 5.0;

/// A signed update ready to upload: the envelope's JSON and the payload.
#[derive(Clone, Debug)]
pub struct Signed {
    /// What was signed.
    pub manifest: Manifest,
    /// The envelope, JSON.
    pub envelope: Vec<u8>,
    /// The payload.
    pub payload: Vec<u8>,
}

/// What the node trained on, for the manifest.
#[derive(Clone, Debug)]
pub struct Provenance {
    /// Registry version of the global model.
    pub base_version: u64,
    /// The round being answered.
    pub round: u64,
    /// Flows trained on.
    pub samples: u64,
    /// Flows per class.
    pub class_counts: Vec<u64>,
}

/// Make and sign the update of `local` against `global`: Δ clipped to `opts.clip`, noise
/// added when asked, then signed by `key`.
pub fn make(
    key: &SigningKey,
    global: &weir_model::Mlp,
    local: &weir_model::Mlp,
    prov: &Provenance,
    opts: &UpdateOptions,
    noise: &mut params::Gauss,
) -> Signed {
    let mut delta = params::sub(&params::flatten(local), &params::flatten(global));
    params::clip(&mut delta, opts.clip);
    let privacy = (opts.noise_multiplier > 0.0).then(|| {
        noise.perturb(&mut delta, opts.noise_multiplier * opts.clip);
        Privacy::of(opts.noise_multiplier, opts.delta, 1)
    });
    sign(
        key,
        &delta,
        prov,
        opts.clip,
        privacy,
        params::shapes(global),
    )
}

/// Sign an update vector as it is (no clipping: [`make`] is what nodes call; the simulation's
/// attackers call this with what they like).
pub fn sign(
    key: &SigningKey,
    delta: &[f32],
    prov: &Provenance,
    clip: f32,
    privacy: Option<Privacy>,
    shapes: Vec<[usize; 2]>,
) -> Signed {
    let payload = encode_payload(delta);
    let manifest = Manifest {
        format: FORMAT,
        node: key.id.clone(),
        base_version: prov.base_version,
        round: prov.round,
        nonce: nonce(),
        samples: prov.samples,
        class_counts: prov.class_counts.clone(),
        shapes,
        // A NaN norm would not survive JSON; the payload's values are checked on their own.
        norm: Some(params::norm(delta))
            .filter(|n| n.is_finite())
            .unwrap_or(f32::MAX),
        clip,
        privacy,
        created_unix: now_unix(),
        payload_sha256: sha256_hex(&payload),
    };
    let text = serde_json::to_string(&manifest).unwrap_or_default();
    let envelope = Envelope {
        signature: key.sign_hex(text.as_bytes()),
        manifest: text,
    };
    Signed {
        manifest,
        envelope: serde_json::to_vec(&envelope).unwrap_or_default(),
        payload,
    }
}

/// Why an update was refused. Every refusal is recorded with this reason; none is merged.
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rejection {
    /// The envelope or manifest is not JSON of the expected form.
    #[error("malformed manifest: {detail}")]
    Malformed {
        /// What was wrong.
        detail: String,
    },
    /// No signature.
    #[error("unsigned: the manifest carries no signature")]
    Unsigned,
    /// The node has no registered key.
    #[error("unknown node {node:?}: no key registered under fl/nodes/")]
    UnknownNode {
        /// The id it claimed.
        node: String,
    },
    /// The signature does not verify with the node's registered key.
    #[error("bad signature: not signed by the registered key of node {node:?}")]
    BadSignature {
        /// The id it claimed.
        node: String,
    },
    /// The payload is not the one the manifest names.
    #[error("payload does not match the signed SHA-256 (got {got}, signed {signed})")]
    PayloadMismatch {
        /// SHA-256 of what arrived.
        got: String,
        /// SHA-256 in the manifest.
        signed: String,
    },
    /// Trained from another model than the round's.
    #[error("stale base: trained from version {got}, the round's model is version {want}")]
    StaleBase {
        /// The manifest's base version.
        got: u64,
        /// The round's.
        want: u64,
    },
    /// For another round.
    #[error("wrong round: made for round {got}, the open round is {want}")]
    WrongRound {
        /// The manifest's round.
        got: u64,
        /// The open one.
        want: u64,
    },
    /// Shapes or length do not match the model.
    #[error("wrong shape: {detail}")]
    Shape {
        /// What differs.
        detail: String,
    },
    /// A NaN or infinity in the payload.
    #[error("not finite: value {index} is {value}")]
    NotFinite {
        /// First bad position.
        index: usize,
        /// Its value, as text.
        value: String,
    },
    /// Norm over the bound.
    #[error("norm {norm:.3} over the bound {bound:.3}")]
    TooLarge {
        /// The payload's norm.
        norm: f32,
        /// The bound.
        bound: f32,
    },
    /// The manifest's stated norm or class counts do not add up.
    #[error("inconsistent manifest: {detail}")]
    Inconsistent {
        /// What.
        detail: String,
    },
    /// The envelope or payload is larger than any this merge reads: refused from its size
    /// (a HEAD), never read.
    #[error("too large to read: the {what} is {bytes} bytes, the limit is {limit}")]
    Oversize {
        /// "envelope" or "payload".
        what: String,
        /// Its size.
        bytes: u64,
        /// The most this merge reads.
        limit: u64,
    },
    /// The node already has an accepted update this round, or this nonce was seen.
    #[error("replay: {detail}")]
    Replay {
        /// Which.
        detail: String,
    },
}

impl Rejection {
    /// A short tag for tables and metrics.
    pub fn tag(&self) -> &'static str {
        match self {
            Rejection::Malformed { .. } => "malformed",
            Rejection::Unsigned => "unsigned",
            Rejection::UnknownNode { .. } => "unknown_node",
            Rejection::BadSignature { .. } => "bad_signature",
            Rejection::PayloadMismatch { .. } => "payload_mismatch",
            Rejection::StaleBase { .. } => "stale_base",
            Rejection::WrongRound { .. } => "wrong_round",
            Rejection::Shape { .. } => "shape",
            Rejection::NotFinite { .. } => "not_finite",
            Rejection::TooLarge { .. } => "too_large",
            Rejection::Inconsistent { .. } => "inconsistent",
            Rejection::Oversize { .. } => "oversize",
            Rejection::Replay { .. } => "replay",
        }
    }
}

/// An update that passed every check.
#[derive(Clone, Debug, PartialEq)]
pub struct Accepted {
    /// Its manifest.
    pub manifest: Manifest,
    /// Δ.
    pub delta: Vec<f32>,
}

/// What an update is checked against: the round's model and the registered keys.
#[derive(Clone, Debug)]
pub struct Checks {
    /// Node id → public key (hex).
    pub keys: HashMap<String, String>,
    /// The version the round's model has.
    pub base_version: u64,
    /// The open round.
    pub round: u64,
    /// The model's layer shapes.
    pub shapes: Vec<[usize; 2]>,
    /// Largest accepted L2 norm of an update.
    pub bound: f32,
    /// Class count the model has.
    pub classes: usize,
}

/// Check one uploaded update (envelope JSON + payload) in the order that costs least first
/// and trusts nothing unsigned: form, signature, payload hash, round and base, shape, values,
/// norm. Replays are the caller's to check ([`crate::round`]: it knows what was accepted).
pub fn verify(checks: &Checks, envelope: &[u8], payload: &[u8]) -> Result<Accepted, Rejection> {
    let env: Envelope = serde_json::from_slice(envelope).map_err(|e| Rejection::Malformed {
        detail: format!("envelope: {e}"),
    })?;
    let m: Manifest = serde_json::from_str(&env.manifest).map_err(|e| Rejection::Malformed {
        detail: format!("manifest: {e}"),
    })?;
    if m.format != FORMAT {
        return Err(Rejection::Malformed {
            detail: format!("format {} (this merge reads {FORMAT})", m.format),
        });
    }
    if env.signature.is_empty() {
        return Err(Rejection::Unsigned);
    }
    let Some(pk) = checks.keys.get(&m.node) else {
        return Err(Rejection::UnknownNode { node: m.node });
    };
    if !signature_ok(pk, env.manifest.as_bytes(), &env.signature) {
        return Err(Rejection::BadSignature { node: m.node });
    }
    let got = sha256_hex(payload);
    if got != m.payload_sha256 {
        return Err(Rejection::PayloadMismatch {
            got,
            signed: m.payload_sha256,
        });
    }
    if m.base_version != checks.base_version {
        return Err(Rejection::StaleBase {
            got: m.base_version,
            want: checks.base_version,
        });
    }
    if m.round != checks.round {
        return Err(Rejection::WrongRound {
            got: m.round,
            want: checks.round,
        });
    }
    if m.shapes != checks.shapes {
        return Err(Rejection::Shape {
            detail: format!("layers {:?}, the model's are {:?}", m.shapes, checks.shapes),
        });
    }
    let delta = decode_payload(payload).ok_or_else(|| Rejection::Shape {
        detail: format!("{} payload bytes are not whole f32 values", payload.len()),
    })?;
    let want = params::count(&checks.shapes);
    if delta.len() != want {
        return Err(Rejection::Shape {
            detail: format!("{} values, the model has {want} parameters", delta.len()),
        });
    }
    if let Some((index, v)) = delta.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Rejection::NotFinite {
            index,
            value: v.to_string(),
        });
    }
    let norm = params::norm(&delta);
    // Noise added after clipping may carry the norm a little over the node's bound; the
    // merge's bound is its own and already allows for it.
    if norm > checks.bound {
        return Err(Rejection::TooLarge {
            norm,
            bound: checks.bound,
        });
    }
    if (norm - m.norm).abs() > 1e-3 * norm.max(1.0) {
        return Err(Rejection::Inconsistent {
            detail: format!("stated norm {} but the payload's is {norm}", m.norm),
        });
    }
    if m.class_counts.len() != checks.classes || m.class_counts.iter().sum::<u64>() != m.samples {
        return Err(Rejection::Inconsistent {
            detail: format!(
                "{} class counts summing to {} for {} samples ({} classes)",
                m.class_counts.len(),
                m.class_counts.iter().sum::<u64>(),
                m.samples,
                checks.classes
            ),
        });
    }
    Ok(Accepted { manifest: m, delta })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (SigningKey, weir_model::Mlp, Checks) {
        let key = SigningKey::from_seed("edge-1", [7; 32]).unwrap();
        let m = weir_model::test_model(4, 6, 3, 1);
        let checks = Checks {
            keys: HashMap::from([(key.id.clone(), key.public_hex())]),
            base_version: 3,
            round: 5,
            shapes: params::shapes(&m),
            bound: 6.0,
            classes: 3,
        };
        (key, m, checks)
    }

    fn prov() -> Provenance {
        Provenance {
            base_version: 3,
            round: 5,
            samples: 10,
            class_counts: vec![5, 3, 2],
        }
    }

    fn shifted(m: &weir_model::Mlp, by: f32) -> weir_model::Mlp {
        let p: Vec<f32> = params::flatten(m).iter().map(|x| x + by).collect();
        params::with_params(m, &p)
    }

    #[test]
    fn a_made_update_verifies_and_is_clipped() {
        let (key, m, checks) = setup();
        let local = shifted(&m, 1.0);
        let s = make(
            &key,
            &m,
            &local,
            &prov(),
            &UpdateOptions::default(),
            &mut params::Gauss::new(1),
        );
        let a = verify(&checks, &s.envelope, &s.payload).unwrap();
        assert!((params::norm(&a.delta) - DEFAULT_CLIP).abs() < 1e-3);
        assert_eq!(a.manifest.node, "edge-1");
        assert_eq!(a.manifest.samples, 10);
        // Stored keys read back as the same key.
        let again = SigningKey::from_pkcs8("edge-1", key.to_bytes()).unwrap();
        assert_eq!(again.public_hex(), key.public_hex());
        let fresh = SigningKey::generate("n").unwrap();
        let back = SigningKey::from_pkcs8("n", fresh.to_bytes()).unwrap();
        assert_eq!(back.public_hex(), fresh.public_hex());
    }

    #[test]
    fn privacy_noise_is_stated_with_its_epsilon() {
        let (key, m, mut checks) = setup();
        checks.bound = 100.0;
        let opts = UpdateOptions {
            clip: 1.0,
            noise_multiplier: 1.0,
            delta: 1e-5,
        };
        let s = make(
            &key,
            &m,
            &shifted(&m, 0.01),
            &prov(),
            &opts,
            &mut params::Gauss::new(2),
        );
        let p = s.manifest.privacy.clone().unwrap();
        // ρ = 0.5, ε = 0.5 + 2√(0.5 ln 1e5) ≈ 5.30
        assert!((p.epsilon - 5.298).abs() < 0.01, "{}", p.epsilon);
        assert!(epsilon(8.0, 1e-5, 20) < epsilon(1.0, 1e-5, 1));
        assert!(epsilon(1.0, 1e-5, 20) > epsilon(1.0, 1e-5, 1));
        assert!(verify(&checks, &s.envelope, &s.payload).is_ok());
    }

    /// Each of the refusals the issue lists, with its reason.
    #[test]
    fn every_bad_update_is_refused_with_its_reason() {
        let (key, m, checks) = setup();
        let n = params::count(&checks.shapes);
        let good = vec![0.01f32; n];
        let signed = |d: &[f32], p: &Provenance| sign(&key, d, p, 5.0, None, checks.shapes.clone());
        let tag = |s: &Signed| verify(&checks, &s.envelope, &s.payload).unwrap_err();

        let mut nan = good.clone();
        nan[3] = f32::NAN;
        assert!(matches!(
            tag(&signed(&nan, &prov())),
            Rejection::NotFinite { index: 3, .. }
        ));
        let mut inf = good.clone();
        inf[0] = f32::INFINITY;
        assert_eq!(tag(&signed(&inf, &prov())).tag(), "not_finite");

        assert_eq!(tag(&signed(&good[1..], &prov())).tag(), "shape");
        let wrong_layers = sign(&key, &good, &prov(), 5.0, None, vec![[1, 1]]);
        assert_eq!(tag(&wrong_layers).tag(), "shape");

        let big = vec![1.0f32; n];
        let e = tag(&signed(&big, &prov()));
        assert_eq!(e.tag(), "too_large");
        assert!(e.to_string().contains("over the bound 6.000"), "{e}");

        let stale = Provenance {
            base_version: 2,
            ..prov()
        };
        assert_eq!(
            tag(&signed(&good, &stale)),
            Rejection::StaleBase { got: 2, want: 3 }
        );
        let other_round = Provenance { round: 4, ..prov() };
        assert_eq!(tag(&signed(&good, &other_round)).tag(), "wrong_round");

        // Unsigned.
        let s = signed(&good, &prov());
        let mut env: Envelope = serde_json::from_slice(&s.envelope).unwrap();
        env.signature.clear();
        let unsigned = serde_json::to_vec(&env).unwrap();
        assert_eq!(
            verify(&checks, &unsigned, &s.payload).unwrap_err(),
            Rejection::Unsigned
        );
        // Signed by another key under this node's name.
        let impostor = SigningKey::from_seed("edge-1", [9; 32]).unwrap();
        let forged = sign(&impostor, &good, &prov(), 5.0, None, checks.shapes.clone());
        assert_eq!(tag(&forged).tag(), "bad_signature");
        // A manifest edited after signing (more samples claimed).
        let mut env: Envelope = serde_json::from_slice(&s.envelope).unwrap();
        env.manifest = env.manifest.replace("\"samples\":10", "\"samples\":10000");
        let edited = serde_json::to_vec(&env).unwrap();
        assert_eq!(
            verify(&checks, &edited, &s.payload).unwrap_err().tag(),
            "bad_signature"
        );
        // A payload swapped under a good manifest.
        let mut other = s.payload.clone();
        other[0] ^= 1;
        assert_eq!(
            verify(&checks, &s.envelope, &other).unwrap_err().tag(),
            "payload_mismatch"
        );
        // An unregistered node.
        let stranger = SigningKey::from_seed("edge-9", [1; 32]).unwrap();
        let s9 = sign(&stranger, &good, &prov(), 5.0, None, checks.shapes.clone());
        assert_eq!(tag(&s9).tag(), "unknown_node");
        // Garbage.
        assert_eq!(
            verify(&checks, b"{not json", &s.payload).unwrap_err().tag(),
            "malformed"
        );
        // Class counts that do not add up to the samples.
        let lying = Provenance {
            samples: 99,
            ..prov()
        };
        assert_eq!(tag(&signed(&good, &lying)).tag(), "inconsistent");
        // And the good one passes.
        assert!(verify(&checks, &s.envelope, &s.payload).is_ok());
        let _ = m;
    }
}

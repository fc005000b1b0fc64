//! `wasm_oci_verify <public key file>`: cosign's signature format, checked with RustCrypto's
//! `p256` (ECDSA P-256 over SHA-256, the algorithm of `cosign generate-key-pair` keys).
//!
//! cosign stores the signature of the manifest `sha256:D` of `REGISTRY/REPO` as the image
//! manifest tagged `sha256-D.sig` in the same repository. Each of its layers is a "simple
//! signing" payload (`application/vnd.dev.cosign.simplesigning.v1+json`) whose
//! `critical.image.docker-manifest-digest` names the signed manifest, with the base64 DER
//! signature of the payload's bytes in the layer annotation `dev.cosignproject.cosign/signature`.
//! An artifact is accepted if one layer's payload names its digest and the repository it was
//! pulled from (`critical.identity.docker-reference`: a signature the same key made for another
//! repository does not vouch for this one) and its signature verifies under the key. The
//! signature manifest and payloads are read with the caps of [`super::MANIFEST_CAP`],
//! [`super::SIGNATURE_CAP`] and [`super::MAX_SIGNATURES`]. (The `sigstore` crate does this too, with Rekor, Fulcio and TUF besides; a
//! pinned key needs none of them, so the host keeps to the ECDSA crate.)

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use oci_client::Client;
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use serde::{Deserialize, Serialize};

use crate::runtime::oci::fetch::read_capped;
use crate::runtime::oci::{MANIFEST_CAP, MAX_SIGNATURES, OciRef, PullError, RegistryClient, SIGNATURE_CAP, sha256_of};

/// The media type of a cosign signature layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// A verification key: ECDSA P-256, as `cosign.pub` holds it (PEM `PUBLIC KEY`).
#[derive(Clone, Debug)]
pub struct PublicKey {
    key: VerifyingKey,
    fingerprint: String,
}

impl PublicKey {
    /// Reads a PEM public key file.
    pub fn read(path: &Path) -> Result<Self> {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read the wasm_oci_verify key {}", path.display()))?;
        let key = VerifyingKey::from_public_key_pem(&pem).map_err(|err| {
            anyhow!("{} is not an ECDSA P-256 public key in PEM (as cosign.pub is): {err}", path.display())
        })?;
        let der = key.to_public_key_der().map_err(|err| anyhow!("{err}"))?;
        let fingerprint = sha256_of(der.as_bytes())["sha256:".len()..][..16].to_owned();
        Ok(Self { key, fingerprint })
    }

    /// The first 16 hex digits of the SHA-256 of the key's DER: how the store records it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    critical: Critical,
    #[serde(default)]
    optional: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

const PAYLOAD_TYPE: &str = "cosign container image signature";

/// The tag cosign stores the signature of manifest `digest` under.
pub fn signature_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1) + ".sig"
}

/// The simple-signing payload for manifest `digest` of `reference`'s repository.
pub fn payload(reference: &OciRef, digest: &str) -> Vec<u8> {
    let payload = Payload {
        critical: Critical {
            identity: Identity { docker_reference: reference.repository() },
            image: Image { docker_manifest_digest: digest.to_owned() },
            kind: PAYLOAD_TYPE.to_owned(),
        },
        optional: None,
    };
    serde_json::to_vec(&payload).expect("a payload serializes")
}

/// Signs `payload` with the PKCS#8 PEM private key at `key`: the base64 DER signature.
pub fn sign(key: &Path, payload: &[u8]) -> Result<String> {
    let pem = std::fs::read_to_string(key).with_context(|| format!("failed to read {}", key.display()))?;
    let key = SigningKey::from_pkcs8_pem(&pem).map_err(|err| {
        anyhow!(
            "{} is not an unencrypted ECDSA P-256 private key in PKCS#8 PEM (openssl genpkey -algorithm EC -pkeyopt \
             ec_paramgen_curve:P-256): {err}",
            key.display()
        )
    })?;
    let signature: DerSignature = key.sign(payload);
    Ok(base64::engine::general_purpose::STANDARD.encode(signature.as_bytes()))
}

/// Checks that the registry holds a signature of manifest `digest` of `reference`'s
/// repository by `key`.
pub fn check(
    registry: &RegistryClient,
    runtime: &tokio::runtime::Handle,
    reference: &OciRef,
    digest: &str,
    key: &PublicKey,
    deadline: Instant,
) -> Result<(), PullError> {
    let tag = reference.with_tag(&signature_tag(digest));
    let fetch = registry.fetcher();
    let what = format!("failed to pull the signature {tag}");
    let pulled = fetch.run(runtime, deadline, &what, async {
        let answer = fetch.get(&tag.manifest_path(), &[OCI_IMAGE_MEDIA_TYPE]).await?;
        read_capped(answer.response, MANIFEST_CAP, &format!("the signature manifest {tag}")).await
    });
    let body = match pulled {
        Ok(body) => body,
        Err(err) if err.is_not_found() => {
            return Err(PullError::Refused(anyhow!("it is not signed (no cosign signature at {tag})")));
        }
        Err(PullError::Registry(err)) => return Err(PullError::Registry(err.context(what))),
        Err(err) => return Err(err),
    };
    let manifest: OciImageManifest = serde_json::from_slice(&body)
        .map_err(|err| PullError::Refused(anyhow!("{tag} is not a cosign signature manifest: {err}")))?;
    let layers: Vec<&OciDescriptor> = manifest.layers.iter().filter(|l| l.media_type == SIMPLE_SIGNING).collect();
    if layers.is_empty() {
        return Err(PullError::Refused(anyhow!("{tag} holds no cosign signature layer")));
    }
    let mut why = Vec::new();
    for layer in layers.into_iter().take(MAX_SIGNATURES) {
        match check_layer(registry, runtime, &tag, reference, layer, digest, key, deadline) {
            Ok(()) => return Ok(()),
            Err(PullError::Refused(err)) => why.push(format!("{err:#}")),
            Err(err) => return Err(err),
        }
    }
    Err(PullError::Refused(anyhow!("no signature by key {} verifies: {}", key.fingerprint(), why.join("; "))))
}

/// Whether the `docker-reference` a payload signs names `pulled`'s repository: cosign writes
/// `REGISTRY/REPOSITORY` (Docker Hub as `index.docker.io`); a tag or digest after it is allowed.
fn names_repository(signed: &str, pulled: &OciRef) -> bool {
    let signed = signed.trim();
    let signed = signed.split_once('@').map_or(signed, |(name, _)| name);
    let signed = match signed.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => signed,
    };
    let hub = |registry: &str| match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        other => other.to_ascii_lowercase(),
    };
    let (signed_registry, signed_repository) = signed.split_once('/').unwrap_or((signed, ""));
    let wanted = pulled.repository();
    let (registry, repository) = wanted.split_once('/').unwrap_or((&wanted, ""));
    hub(signed_registry) == hub(registry) && signed_repository == repository
}

#[allow(clippy::too_many_arguments)]
fn check_layer(
    registry: &RegistryClient,
    runtime: &tokio::runtime::Handle,
    tag: &OciRef,
    reference: &OciRef,
    layer: &OciDescriptor,
    digest: &str,
    key: &PublicKey,
    deadline: Instant,
) -> Result<(), PullError> {
    let Some(signature) = layer.annotations.as_ref().and_then(|a| a.get(SIGNATURE_ANNOTATION)) else {
        return Err(PullError::Refused(anyhow!("a layer has no {SIGNATURE_ANNOTATION} annotation")));
    };
    if layer.size < 0 || layer.size as u64 > SIGNATURE_CAP {
        return Err(PullError::Refused(anyhow!(
            "a signature payload of {} bytes is more than the {SIGNATURE_CAP} the host reads",
            layer.size
        )));
    }
    let fetch = registry.fetcher();
    let what = format!("failed to pull a signature payload of {tag}");
    let body = fetch.run(runtime, deadline, &what, async {
        let answer = fetch.get(&tag.blob_path(&layer.digest), &[]).await?;
        read_capped(answer.response, SIGNATURE_CAP, "a signature payload").await
    })?;
    if sha256_of(&body) != layer.digest {
        return Err(PullError::Refused(anyhow!("a signature payload does not match its digest")));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| PullError::Refused(anyhow!("a signature is not base64")))?;
    let signature = DerSignature::try_from(der.as_slice())
        .map_err(|_| PullError::Refused(anyhow!("a signature is not ECDSA DER")))?;
    key.key.verify(&body, &signature).map_err(|_| PullError::Refused(anyhow!("a signature does not verify")))?;
    let payload: Payload = serde_json::from_slice(&body)
        .map_err(|err| PullError::Refused(anyhow!("a signed payload is not a cosign payload: {err}")))?;
    if payload.critical.kind != PAYLOAD_TYPE {
        return Err(PullError::Refused(anyhow!("a signed payload has type {:?}", payload.critical.kind)));
    }
    if payload.critical.image.docker_manifest_digest != digest {
        return Err(PullError::Refused(anyhow!(
            "a valid signature is for {}, not for this manifest",
            payload.critical.image.docker_manifest_digest
        )));
    }
    if !names_repository(&payload.critical.identity.docker_reference, reference) {
        return Err(PullError::Refused(anyhow!(
            "a valid signature of this manifest is for the repository {:?}, not for {} (a signature made for \
             another repository does not vouch for this one)",
            payload.critical.identity.docker_reference,
            reference.repository()
        )));
    }
    Ok(())
}

/// Stores a signature of manifest `digest` as cosign does (`sha256-D.sig`): what `out-wasm
/// sign` pushes.
pub fn push_signature(
    client: &Client,
    auth: &RegistryAuth,
    runtime: &tokio::runtime::Handle,
    reference: &OciRef,
    digest: &str,
    signing_key: &Path,
) -> Result<OciRef> {
    let body = payload(reference, digest);
    let signature = sign(signing_key, &body)?;
    let tag = reference.with_tag(&signature_tag(digest));
    let config = b"{}".to_vec();
    let config_digest = sha256_of(&config);
    let layer_digest = sha256_of(&body);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len() },
        "layers": [{
            "mediaType": SIMPLE_SIGNING, "digest": layer_digest, "size": body.len(),
            "annotations": { SIGNATURE_ANNOTATION: signature },
        }],
    }))?;
    runtime
        .block_on(async {
            client.auth(tag.inner(), auth, oci_client::RegistryOperation::Push).await?;
            client.push_blob(tag.inner(), config, &config_digest).await?;
            client.push_blob(tag.inner(), body, &layer_digest).await?;
            client
                .push_manifest_raw(
                    tag.inner(),
                    manifest,
                    http::HeaderValue::from_static(oci_client::manifest::OCI_IMAGE_MEDIA_TYPE),
                )
                .await
        })
        .map_err(|err| anyhow!("failed to push the signature {tag}: {err}"))?;
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_reference_must_name_the_pulled_repository() {
        let pulled = OciRef::parse("oci://localhost:5000/guests/tally:v1").unwrap();
        for same in ["localhost:5000/guests/tally", "localhost:5000/guests/tally:v1", "LOCALHOST:5000/guests/tally"] {
            assert!(names_repository(same, &pulled), "{same}");
        }
        let digest = format!("localhost:5000/guests/tally@sha256:{}", "a".repeat(64));
        assert!(names_repository(&digest, &pulled));
        for other in [
            "localhost:5000/guests/other",
            "localhost:5000/guests/tally/x",
            "localhost:5001/guests/tally",
            "ghcr.io/guests/tally",
            "localhost:5000/guests",
            "",
        ] {
            assert!(!names_repository(other, &pulled), "{other}");
        }
        let hub = OciRef::parse("oci://docker.io/acme/guest:1").unwrap();
        assert!(names_repository("index.docker.io/acme/guest", &hub));
    }
}

//! Guests pulled from an OCI registry: `wasm_path oci://REGISTRY/REPOSITORY:TAG` (followed) or
//! `oci://REGISTRY/REPOSITORY@sha256:DIGEST` (pinned).
//!
//! An artifact has the CNCF layout for WebAssembly: an OCI image manifest whose config is
//! `application/vnd.wasm.config.v0+json` and whose one layer is the component
//! (`application/wasm`; the older `application/vnd.wasm.content.layer.v1+wasm` and its config
//! `application/vnd.wasm.config.v1+json` are accepted too). The registry is spoken to with the
//! ORAS project's `oci-client`, over HTTPS trusting the host's roots and `wasm_tls_ca_file`,
//! anonymously or with the credentials of a Docker `config.json` ([`auth`]).
//!
//! What is pulled is checked before anything is compiled: the manifest against its digest (the
//! pinned one, or the one the tag resolved to), the layer against the manifest's digest and
//! size as it streams into the [`store`], and under `wasm_oci_verify` the manifest's cosign
//! signature against a public key ([`verify`]). Only a component that passed every check is
//! stored, so the store is what an air-gapped node, a restart or a registry outage starts from.
//!
//! What a registry can make the host hold is bounded (docs/security.md): the reads of a pull
//! go through [`fetch`], each with a byte cap ([`MANIFEST_CAP`], [`SIGNATURE_CAP`],
//! [`COMPONENT_CAP`]; configs are never downloaded), and the whole pull (resolve, manifest,
//! signatures, layer) through one deadline, `wasm_oci_pull_timeout` (default
//! [`DEFAULT_PULL_TIMEOUT`]); the watcher's pull in flight is abandoned at once when the output
//! stops (exit, hot reload).
//!
//! Every call here blocks on a tokio runtime the caller names: the watcher thread and the
//! agent's init thread, never the flush path.

pub mod auth;
pub mod fetch;
pub mod store;
pub mod verify;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

use crate::sandbox::tls::TlsTrust;

pub use store::{ArtifactStore, Record};
pub use verify::PublicKey;

/// What `wasm_path` starts with when it names a registry artifact.
pub const SCHEME: &str = "oci://";
/// The config of the CNCF WebAssembly artifact layout.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The config of the layout `wasm-to-oci` and early runtimes pushed.
pub const WASM_CONFIG_V1: &str = "application/vnd.wasm.config.v1+json";
/// The component layer of the CNCF layout.
pub const WASM_LAYER: &str = "application/wasm";
/// The component layer of the older layout.
pub const WASM_LAYER_V1: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// The layer annotation naming the file a layer is (what `oras pull` writes it to).
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
/// The manifest types a pull accepts: an image manifest, OCI's or Docker's.
const MANIFEST_TYPES: &[&str] = &[OCI_IMAGE_MEDIA_TYPE, oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE];

/// How long connecting to a registry may take, and a read wait without data: past these a pull
/// counts as the registry being unreachable, and the current version keeps serving.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of `wasm_oci_pull_timeout`: how long one whole pull (resolve, manifest, signatures,
/// layer) may take, whatever the registry does; the agent's start, a hot reload's start and a
/// poll wait no longer. A minute downloads an 80 MiB interpreter at 11 Mbit/s.
pub const DEFAULT_PULL_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest manifest read (the artifact's, a signature's): an artifact manifest is under
/// 1 KiB, a cosign signature manifest about 500 bytes a signature.
pub const MANIFEST_CAP: u64 = 1 << 20;
/// The largest cosign signature payload read (a simple-signing payload is about 250 bytes).
pub const SIGNATURE_CAP: u64 = 64 << 10;
/// The most signature layers checked in one signature manifest.
pub const MAX_SIGNATURES: usize = 32;
/// The largest component layer pulled (streamed to the store, never held): an interpreter's
/// component is 15 to 40 MiB.
pub const COMPONENT_CAP: u64 = 256 << 20;

/// Whether `wasm_path` names a registry artifact rather than a file.
pub fn is_reference(wasm_path: &str) -> bool {
    wasm_path.trim().starts_with(SCHEME)
}

/// A parsed `oci://` reference.
#[derive(Clone, PartialEq, Eq)]
pub struct OciRef {
    reference: Reference,
}

impl fmt::Debug for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}", self.reference.whole())
    }
}

impl OciRef {
    /// Parses `oci://REGISTRY/REPOSITORY:TAG` or `oci://REGISTRY/REPOSITORY@sha256:DIGEST`.
    /// The registry must be named: a bare `repository:tag` would silently mean Docker Hub.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix(SCHEME) else {
            bail!("{text:?} is not an OCI reference (oci://REGISTRY/REPOSITORY:TAG or ...@sha256:DIGEST)");
        };
        let first = rest.split('/').next().unwrap_or_default();
        if !rest.contains('/') || !(first.contains('.') || first.contains(':') || first == "localhost") {
            bail!(
                "{text:?} names no registry: write oci://REGISTRY/REPOSITORY:TAG, e.g. \
                 oci://ghcr.io/acme/guest:1.0 or oci://localhost:5000/guest:1.0"
            );
        }
        let reference: Reference = rest
            .parse()
            .map_err(|err| anyhow!("{err}"))
            .with_context(|| format!("{text:?} is not an OCI reference"))?;
        if let Some(digest) = reference.digest()
            && !digest.starts_with("sha256:")
        {
            bail!("{text:?} pins a digest that is not sha256 (the only one the host checks)");
        }
        if reference.digest().is_none() && !rest.rsplit('/').next().unwrap_or_default().contains(':') {
            bail!("{text:?} names no tag and no digest: add :TAG (followed) or @sha256:DIGEST (pinned)");
        }
        Ok(Self { reference })
    }

    /// The pinned manifest digest (`sha256:...`), if the reference has one.
    pub fn digest(&self) -> Option<&str> {
        self.reference.digest()
    }

    /// Whether the reference is a tag the host follows (no digest pins it).
    pub fn follows(&self) -> bool {
        self.reference.digest().is_none()
    }

    /// The registry's host (and port).
    pub fn registry(&self) -> &str {
        self.reference.resolve_registry()
    }

    /// The same repository at manifest `digest`.
    pub fn at(&self, digest: &str) -> Self {
        Self { reference: self.reference.clone_with_digest(digest.to_owned()) }
    }

    /// The same repository at `tag`.
    pub fn with_tag(&self, tag: &str) -> Self {
        let reference = Reference::with_tag(
            self.reference.registry().to_owned(),
            self.reference.repository().to_owned(),
            tag.to_owned(),
        );
        Self { reference }
    }

    /// `REGISTRY/REPOSITORY`, what a signature's payload names.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.reference.registry(), self.reference.repository())
    }

    fn inner(&self) -> &Reference {
        &self.reference
    }

    /// `/v2/REPOSITORY/manifests/TAG-or-DIGEST`.
    fn manifest_path(&self) -> String {
        let at = self.reference.digest().or(self.reference.tag()).unwrap_or("latest");
        format!("/v2/{}/manifests/{at}", self.reference.repository())
    }

    /// `/v2/REPOSITORY/blobs/DIGEST`.
    fn blob_path(&self, digest: &str) -> String {
        format!("/v2/{}/blobs/{digest}", self.reference.repository())
    }
}

/// `wasm_oci_verify`: what a pulled artifact must prove besides its digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Nothing more (the default): the layer still has to match the manifest.
    Off,
    /// The reference must pin a digest: the operator's config names the exact artifact.
    Digest,
    /// A cosign signature of the manifest digest that this public key verifies.
    Key(PathBuf),
}

/// A component the host may load: pulled and checked now, or stored by an earlier pull.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// The manifest digest (`sha256:...`): what a tag resolves to and what is signed.
    pub manifest: String,
    /// Lowercase hex SHA-256 of the component (the layer digest): the component's digest.
    pub digest: String,
    /// The component file in the store.
    pub path: PathBuf,
    /// Why the registry could not be asked, when it came from the store without asking.
    pub offline: Option<String>,
}

/// Why a pull did not give an artifact.
#[derive(Debug)]
pub enum PullError {
    /// The registry could not be asked or did not answer (network, TLS, credentials, server
    /// errors): nothing is known about the artifact; the host serves what it has.
    Registry(anyhow::Error),
    /// The registry answered, and what it gave is refused: not a component artifact, a digest
    /// mismatch, a missing or bad signature. Not tried again until the reference moves.
    Refused(anyhow::Error),
}

impl fmt::Display for PullError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Registry(err) | Self::Refused(err) => write!(f, "{err:#}"),
        }
    }
}

impl std::error::Error for PullError {}

fn registry_error(err: OciDistributionError, what: &str) -> PullError {
    let err = match &err {
        OciDistributionError::UnauthorizedError { url } => anyhow!(
            "the registry refused the credentials (401 unauthorized for {url}): check the user and password for \
             this registry in wasm_oci_auth_file"
        ),
        OciDistributionError::AuthenticationFailure(_) => {
            anyhow!("the registry's token service refused the credentials: check wasm_oci_auth_file")
        }
        _ => anyhow::Error::new(err),
    };
    PullError::Registry(err.context(what.to_owned()))
}

fn refused(err: impl Into<anyhow::Error>) -> PullError {
    PullError::Refused(err.into())
}

/// The TLS roots a registry connection trusts: the host's public roots, the system's with
/// `wasm_tls_system_roots on`, and `wasm_tls_ca_file`'s: the guests' HTTPS trust.
fn roots(trust: &TlsTrust) -> Result<Vec<Certificate>> {
    let der = |cert: &CertificateDer<'_>| Certificate { encoding: CertificateEncoding::Der, data: cert.to_vec() };
    let mut roots: Vec<Certificate> = webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().map(der).collect();
    if trust.system_roots {
        roots.extend(rustls_native_certs::load_native_certs().certs.iter().map(der));
    }
    if let Some(path) = &trust.ca_file {
        // Already read and checked by `TlsTrust`; read again for the certificates themselves.
        for cert in CertificateDer::pem_file_iter(path).map_err(|err| anyhow!("{err}"))? {
            roots.push(der(&cert.map_err(|err| anyhow!("{err}"))?));
        }
    }
    Ok(roots)
}

/// A connection to the registry of one reference, with its credentials.
pub struct RegistryClient {
    fetch: fetch::Fetcher,
    auth: RegistryAuth,
    /// Where the credentials came from, for messages (never the credentials).
    auth_source: String,
    /// The TLS roots, for the push client (made when the scheme is known).
    roots: Vec<Certificate>,
    /// `wasm_oci_pull_timeout`.
    pull_timeout: Duration,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient").field("auth", &self.auth_source).finish_non_exhaustive()
    }
}

/// How a registry is reached, besides TLS and credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reach {
    /// `wasm_oci_insecure_http`: plain HTTP to a registry not on loopback.
    pub insecure_http: bool,
    /// `wasm_oci_pull_timeout`.
    pub pull_timeout: Duration,
}

impl Default for Reach {
    fn default() -> Self {
        Self { insecure_http: false, pull_timeout: DEFAULT_PULL_TIMEOUT }
    }
}

impl RegistryClient {
    /// A client for `reference`'s registry: TLS trusting what the guests' HTTPS trusts,
    /// credentials from `auth_file` (else the default Docker config, if there is one).
    pub fn connect(reference: &OciRef, auth_file: Option<&Path>, reach: Reach, trust: &TlsTrust) -> Result<Self> {
        // reqwest takes rustls' process default; this library's rustls is its own (statically
        // linked), and ring is the provider the rest of the host names.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let roots = roots(trust)?;
        let mut certificates = Vec::with_capacity(roots.len());
        for root in &roots {
            certificates.push(reqwest::Certificate::from_der(&root.data).context("failed to read a TLS root")?);
        }
        let http = reqwest::Client::builder()
            .tls_certs_only(certificates)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("out_wasm/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("failed to set up the registry client")?;
        let (auth, auth_source) = auth::credentials(reference.registry(), auth_file)?;
        let fetch = fetch::Fetcher::new(http, reference.registry(), reach.insecure_http, auth.clone());
        Ok(Self { fetch, auth, auth_source, roots, pull_timeout: reach.pull_timeout })
    }

    /// Where the credentials come from: `anonymous`, or the file and registry entry.
    pub fn auth_source(&self) -> &str {
        &self.auth_source
    }

    /// When a pull started now must be over.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.pull_timeout
    }

    /// Abandons the pull in flight, and any later one: the output is stopping.
    pub fn cancel(&self) {
        self.fetch.cancel();
    }

    /// Whether [`RegistryClient::cancel`] was called: a pull that failed then failed for that.
    pub fn cancelled(&self) -> bool {
        self.fetch.cancelled()
    }

    pub(crate) fn fetcher(&self) -> &fetch::Fetcher {
        &self.fetch
    }

    /// oci-client, for pushing (`out-wasm push` and `sign`): over the scheme the registry
    /// answers on (plain HTTP on loopback or under `wasm_oci_insecure_http`).
    fn push_client(&self, runtime: &tokio::runtime::Handle) -> Result<Client> {
        let deadline = self.deadline();
        let plain = self
            .fetch
            .run(runtime, deadline, "failed to reach the registry", self.fetch.probe())
            .map_err(|err| anyhow!("{err}"))?;
        let config = ClientConfig {
            protocol: if plain { ClientProtocol::Http } else { ClientProtocol::Https },
            tls_certs_only: self.roots.clone(),
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            // An index (a multi-platform image) is not a component artifact.
            platform_resolver: None,
            user_agent: concat!("out_wasm/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        Client::try_from(config).context("failed to set up the registry client")
    }

    /// The manifest digest `reference` names now: the pinned one, or what the tag points to
    /// (a `HEAD` request: polling an unchanged tag downloads nothing).
    pub fn resolve(
        &self,
        runtime: &tokio::runtime::Handle,
        reference: &OciRef,
        deadline: Instant,
    ) -> Result<String, PullError> {
        if let Some(digest) = reference.digest() {
            return Ok(digest.to_owned());
        }
        let what = format!("failed to resolve {reference}");
        let path = reference.manifest_path();
        let digest = self
            .fetch
            .run(runtime, deadline, &what, async {
                let answer = self.fetch.head(&path, MANIFEST_TYPES).await?;
                let header = answer.response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok());
                if let Some(digest) = header {
                    return Ok(digest.trim().to_owned());
                }
                // A registry that names no digest: the manifest itself, hashed (capped as any).
                let answer = self.fetch.get(&path, MANIFEST_TYPES).await?;
                let body =
                    fetch::read_capped(answer.response, MANIFEST_CAP, &format!("the manifest of {reference}")).await?;
                Ok::<_, PullError>(sha256_of(&body))
            })
            .map_err(|err| match err {
                PullError::Registry(err) => PullError::Registry(err.context(what.clone())),
                other => other,
            })?;
        if !digest.starts_with("sha256:") {
            return Err(refused(anyhow!("{reference} resolves to {digest}, not a sha256 digest")));
        }
        Ok(digest)
    }

    /// The image manifest at `digest` of `reference`'s repository, checked against the digest.
    pub fn manifest(
        &self,
        runtime: &tokio::runtime::Handle,
        reference: &OciRef,
        digest: &str,
        deadline: Instant,
    ) -> Result<OciImageManifest, PullError> {
        let at = reference.at(digest);
        let what = format!("failed to pull the manifest of {at}");
        let body = self
            .fetch
            .run(runtime, deadline, &what, async {
                let answer = self.fetch.get(&at.manifest_path(), MANIFEST_TYPES).await?;
                fetch::read_capped(answer.response, MANIFEST_CAP, &format!("the manifest of {at}")).await
            })
            .map_err(|err| match err {
                PullError::Registry(err) => PullError::Registry(err.context(what.clone())),
                PullError::Refused(err) => PullError::Refused(err.context(format!("{at} is refused"))),
            })?;
        // Everything after (the signature, the layer) rests on the manifest being the one the
        // digest names.
        if sha256_of(&body) != digest {
            return Err(refused(anyhow!("{at}: the manifest the registry sent does not match its digest")));
        }
        serde_json::from_slice(&body)
            .map_err(|err| refused(anyhow!("{at}: the manifest is not an image manifest: {err}")))
    }

    /// Pulls the component artifact `digest` of `reference`'s repository into `store`, checking
    /// its layout, its signature (under `verify`) and its layer; or finds it there, verified
    /// under the same rule by an earlier pull.
    pub fn pull(
        &self,
        runtime: &tokio::runtime::Handle,
        reference: &OciRef,
        digest: &str,
        verify: &Verify,
        store: &ArtifactStore,
        deadline: Instant,
    ) -> Result<Artifact, PullError> {
        let key = match verify {
            Verify::Key(path) => Some(PublicKey::read(path).map_err(PullError::Refused)?),
            _ => None,
        };
        let policy = policy(verify, key.as_ref());
        if let Some(artifact) = store.find(digest, &policy) {
            store.remember(reference, digest);
            return Ok(artifact);
        }
        let at = reference.at(digest);
        let manifest = self.manifest(runtime, reference, digest, deadline)?;
        let layer = component_layer(&at, &manifest)?;
        if let Some(key) = &key {
            verify::check(self, runtime, reference, digest, key, deadline).map_err(|err| match err {
                PullError::Refused(err) => PullError::Refused(err.context(format!("{at} is refused"))),
                other => other,
            })?;
        }
        let component = layer
            .digest
            .strip_prefix("sha256:")
            .map(str::to_owned)
            .ok_or_else(|| refused(anyhow!("{at}: the component layer's digest {} is not sha256", layer.digest)))?;
        let path = match store.component(&component) {
            Some(path) => path,
            None => self.download(runtime, &at, &layer, &component, store, deadline)?,
        };
        store.record(digest, &Record { component: component.clone(), policy }).map_err(PullError::Registry)?;
        store.remember(reference, digest);
        Ok(Artifact { manifest: digest.to_owned(), digest: component, path, offline: None })
    }

    /// Streams the layer into the store, hashing it as it comes: a layer that does not match
    /// the manifest's digest or size never becomes a file there.
    fn download(
        &self,
        runtime: &tokio::runtime::Handle,
        at: &OciRef,
        layer: &OciDescriptor,
        component: &str,
        store: &ArtifactStore,
        deadline: Instant,
    ) -> Result<PathBuf, PullError> {
        let expected = u64::try_from(layer.size).unwrap_or(0);
        if expected > COMPONENT_CAP {
            return Err(refused(anyhow!(
                "{at}: the component layer is {expected} bytes, more than the {COMPONENT_CAP} the host pulls"
            )));
        }
        let mut outcome: Option<PullError> = None;
        let what = format!("failed to pull the component layer of {at}");
        let written = store.write(component, |file| {
            let result = self.fetch.run(runtime, deadline, &what, async {
                let answer = self.fetch.get(&at.blob_path(&layer.digest), &[]).await?;
                let mut response = answer.response;
                let mut hasher = Sha256::new();
                let mut got: u64 = 0;
                let mut broke = None;
                loop {
                    match response.chunk().await {
                        Ok(Some(bytes)) => {
                            got += bytes.len() as u64;
                            if got > expected {
                                return Err(refused(anyhow!(
                                    "{at}: the component layer is larger than the {expected} bytes its manifest says"
                                )));
                            }
                            hasher.update(&bytes);
                            file.write_all(&bytes).map_err(|err| PullError::Registry(err.into()))?;
                        }
                        Ok(None) => break,
                        Err(err) => {
                            broke = Some(err);
                            break;
                        }
                    }
                }
                // Whether the bytes are all there tells a damaged layer from a broken transfer.
                let actual: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
                if got == expected && actual != component {
                    return Err(refused(anyhow!(
                        "{at}: the component layer does not match its digest (the registry sent sha256 {actual}, \
                         the manifest names sha256 {component}): damaged or tampered with, not loaded"
                    )));
                }
                if let Some(err) = broke {
                    return Err(PullError::Registry(anyhow!(err).context(format!("the download of {at} broke"))));
                }
                if got != expected {
                    return Err(PullError::Registry(anyhow!(
                        "the download of {at} ended after {got} of {expected} bytes"
                    )));
                }
                Ok::<_, PullError>(())
            });
            result.map_err(|err| {
                let message = anyhow!("{err}");
                outcome = Some(err);
                message
            })
        });
        match (written, outcome) {
            (Ok(path), _) => {
                let mut head = [0; 8];
                let header = std::fs::File::open(&path)
                    .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut head))
                    .map_err(anyhow::Error::from)
                    .and_then(|()| crate::runtime::image::check_header(&head));
                if let Err(err) = header {
                    store.forget(component);
                    return Err(refused(err.context(format!("{at}: the component layer is not a component"))));
                }
                Ok(path)
            }
            (Err(_), Some(err)) => Err(err),
            (Err(err), None) => Err(PullError::Registry(err.context("failed to write to the artifact store"))),
        }
    }

    /// Pushes `component` as a CNCF WebAssembly artifact to `reference` (a tag); returns the
    /// manifest digest.
    /// The layer is titled `title` (`org.opencontainers.image.title`, the file name `oras pull`
    /// writes it to).
    pub fn push(
        &self,
        runtime: &tokio::runtime::Handle,
        reference: &OciRef,
        component: &[u8],
        title: &str,
    ) -> Result<String> {
        crate::runtime::image::check_header(component)?;
        let layer_digest = format!("sha256:{}", crate::runtime::image::digest(component));
        // The CNCF layout's config: what the artifact is, with its one layer.
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [layer_digest],
        }))?;
        let config_digest = sha256_of(&config);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_MEDIA_TYPE,
            "artifactType": WASM_CONFIG,
            "config": { "mediaType": WASM_CONFIG, "digest": config_digest, "size": config.len() },
            "layers": [{
                "mediaType": WASM_LAYER, "digest": layer_digest, "size": component.len(),
                "annotations": { TITLE_ANNOTATION: title },
            }],
        }))?;
        let manifest_digest = sha256_of(&manifest);
        let client = self.push_client(runtime)?;
        runtime
            .block_on(async {
                let inner = reference.inner();
                client.auth(inner, &self.auth, oci_client::RegistryOperation::Push).await?;
                client.push_blob(inner, config.clone(), &config_digest).await?;
                client.push_blob(inner, component.to_vec(), &layer_digest).await?;
                client
                    .push_manifest_raw(inner, manifest.clone(), http::HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE))
                    .await?;
                Ok::<_, OciDistributionError>(())
            })
            .map_err(|err| match registry_error(err, &format!("failed to push to {reference}")) {
                PullError::Registry(err) | PullError::Refused(err) => err,
            })?;
        Ok(manifest_digest)
    }

    /// The push client and credentials (`out-wasm sign`).
    pub(crate) fn push_access(&self, runtime: &tokio::runtime::Handle) -> Result<(Client, &RegistryAuth)> {
        Ok((self.push_client(runtime)?, &self.auth))
    }
}

/// The one component layer of a CNCF WebAssembly artifact, or why `manifest` is not one.
fn component_layer(at: &OciRef, manifest: &OciImageManifest) -> Result<OciDescriptor, PullError> {
    let config = manifest.config.media_type.as_str();
    if config != WASM_CONFIG && config != WASM_CONFIG_V1 {
        return Err(refused(anyhow!(
            "{at} is not a WebAssembly artifact: its config is {config}, not {WASM_CONFIG} (push it with `out-wasm \
             push`, `wkg oci push` or `oras push --artifact-type {WASM_CONFIG}`)"
        )));
    }
    let layers: Vec<&OciDescriptor> =
        manifest.layers.iter().filter(|l| l.media_type == WASM_LAYER || l.media_type == WASM_LAYER_V1).collect();
    match layers.as_slice() {
        [layer] if manifest.layers.len() == 1 => Ok((*layer).clone()),
        _ => {
            let types: Vec<&str> = manifest.layers.iter().map(|l| l.media_type.as_str()).collect();
            Err(refused(anyhow!(
                "{at} is not a component artifact: it must have exactly one {WASM_LAYER} layer, it has [{}]",
                types.join(", ")
            )))
        }
    }
}

/// The rule an artifact was checked under, as the store records it: an artifact checked under
/// one key is not taken for one another key would have to sign.
fn policy(verify: &Verify, key: Option<&PublicKey>) -> String {
    match (verify, key) {
        (Verify::Key(_), Some(key)) => format!("cosign:{}", key.fingerprint()),
        (Verify::Digest, _) => "digest".to_owned(),
        _ => "none".to_owned(),
    }
}

/// Whether an artifact checked under `recorded` satisfies `wanted` (see [`policy`]): any
/// artifact of the store passed its digests; a signature is only as good as the key it is for.
fn satisfies(recorded: &str, wanted: &str) -> bool {
    !wanted.starts_with("cosign:") || recorded == wanted
}

/// `sha256:` and the lowercase hex SHA-256 of `bytes`.
pub fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::runtime::image::digest(bytes))
}

/// Everything an output instance needs to follow an `oci://` reference.
pub struct OciSource {
    pub reference: OciRef,
    pub verify: Verify,
    pub poll_interval: Duration,
    pub registry: RegistryClient,
    pub store: ArtifactStore,
}

impl fmt::Debug for OciSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OciSource").field("reference", &self.reference).finish_non_exhaustive()
    }
}

impl OciSource {
    /// The artifact to start with: pulled now, or (the registry unreachable) the last one the
    /// store verified for this reference under the same rule. `None` in the error: nothing to
    /// start from.
    pub fn initial(&self, runtime: &tokio::runtime::Handle) -> Result<Artifact> {
        // An unreadable key refuses the start: the store must not stand in for a signature
        // that cannot be checked.
        let key = match &self.verify {
            Verify::Key(path) => Some(PublicKey::read(path)?),
            _ => None,
        };
        let wanted = policy(&self.verify, key.as_ref());
        let deadline = self.registry.deadline();
        let pulled = self.registry.resolve(runtime, &self.reference, deadline).and_then(|digest| {
            self.registry.pull(runtime, &self.reference, &digest, &self.verify, &self.store, deadline)
        });
        match pulled {
            Ok(artifact) => Ok(artifact),
            Err(PullError::Refused(err)) => Err(err),
            Err(PullError::Registry(err)) => {
                let digest = match self.reference.digest() {
                    Some(digest) => Some(digest.to_owned()),
                    None => self.store.recall(&self.reference),
                };
                let found = digest.as_deref().and_then(|digest| self.store.find(digest, &wanted));
                match found {
                    Some(mut artifact) => {
                        artifact.offline = Some(format!("{err:#}"));
                        Ok(artifact)
                    }
                    // The registry's reason first: it is what the operator fixes.
                    None => Err(anyhow!(
                        "{err:#} (and the artifact store holds no verified pull of {} to start from)",
                        self.reference
                    )),
                }
            }
        }
    }

    /// What the tag points to now, pulled and checked, if it moved away from `current` and from
    /// `refused` (a manifest digest refused before).
    pub fn poll(
        &self,
        runtime: &tokio::runtime::Handle,
        current: &str,
        refused: Option<&str>,
    ) -> Result<Option<Artifact>, (String, PullError)> {
        let deadline = self.registry.deadline();
        let digest = self.registry.resolve(runtime, &self.reference, deadline).map_err(|err| (String::new(), err))?;
        if digest == current || Some(digest.as_str()) == refused {
            return Ok(None);
        }
        self.registry
            .pull(runtime, &self.reference, &digest, &self.verify, &self.store, deadline)
            .map(Some)
            .map_err(|err| (digest, err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_a_registry_and_a_tag_or_a_sha256_digest() {
        let tag = OciRef::parse("oci://localhost:5000/guests/tally:v1").unwrap();
        assert!(tag.follows());
        assert_eq!(tag.registry(), "localhost:5000");
        assert_eq!(tag.to_string(), "oci://localhost:5000/guests/tally:v1");
        let digest = format!("sha256:{}", "ab".repeat(32));
        let pinned = OciRef::parse(&format!("oci://ghcr.io/acme/guest@{digest}")).unwrap();
        assert!(!pinned.follows());
        assert_eq!(pinned.digest(), Some(digest.as_str()));
        assert_eq!(tag.at(&digest).to_string(), format!("oci://localhost:5000/guests/tally@{digest}"));
        for (bad, why) in [
            ("/opt/guest.wasm", "not an OCI reference"),
            ("oci://guest:1.0", "names no registry"),
            ("oci://localhost:5000/guest", "names no tag and no digest"),
            ("oci://localhost:5000/Guest:1", "not an OCI reference"),
        ] {
            let err = format!("{:#}", OciRef::parse(bad).unwrap_err());
            assert!(err.contains(why), "{bad}: expected {why:?} in {err}");
        }
    }

    #[test]
    fn a_signature_is_only_as_good_as_its_key() {
        assert!(satisfies("none", "none"));
        assert!(satisfies("cosign:abc", "digest"));
        assert!(satisfies("cosign:abc", "cosign:abc"));
        assert!(!satisfies("none", "cosign:abc"));
        assert!(!satisfies("cosign:def", "cosign:abc"));
    }
}

/// What `out-wasm push`, `sign` and `check oci://` do, each on a runtime of its own (the
/// command has no agent): the same client, checks and store as the plugin.
pub mod tool {
    use std::path::{Path, PathBuf};

    use anyhow::{Context, Result};

    use super::{ArtifactStore, OciRef, Reach, RegistryClient, TlsTrust, Verify};

    /// How the command reaches a registry: the keys an `[OUTPUT]` section would have.
    #[derive(Clone, Debug, Default)]
    pub struct Access {
        /// `wasm_oci_auth_file` (default `~/.docker/config.json`).
        pub auth_file: Option<PathBuf>,
        /// `wasm_tls_ca_file`.
        pub ca_file: Option<PathBuf>,
        /// `wasm_oci_insecure_http`: plain HTTP to a registry not on loopback.
        pub insecure_http: bool,
    }

    /// A runtime with a worker of its own: the registry calls run through `Handle::block_on`,
    /// which drives no I/O on a current-thread runtime.
    fn runtime() -> Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("failed to start a runtime")
    }

    fn connect(reference: &OciRef, access: &Access) -> Result<RegistryClient> {
        let trust = TlsTrust::load(access.ca_file.clone(), false)?;
        let reach = Reach { insecure_http: access.insecure_http, ..Reach::default() };
        RegistryClient::connect(reference, access.auth_file.as_deref(), reach, &trust)
    }

    /// Pushes the component file `guest` to `reference` (a tag); returns the manifest digest.
    pub fn push(guest: &Path, reference: &str, access: &Access) -> Result<String> {
        let reference = OciRef::parse(reference)?;
        anyhow::ensure!(reference.follows(), "push to a tag (oci://REGISTRY/REPOSITORY:TAG), not to a digest");
        let bytes = std::fs::read(guest).with_context(|| format!("failed to read {}", guest.display()))?;
        // The file's name, as `oras push` titles a layer: what `oras pull` writes it back to.
        let title = guest.file_name().map_or_else(|| "guest.wasm".into(), |name| name.to_string_lossy());
        let runtime = runtime()?;
        connect(&reference, access)?.push(runtime.handle(), &reference, &bytes, &title)
    }

    /// Signs what `reference` names now with the PKCS#8 PEM key `key`, stored as cosign does;
    /// returns the signed manifest digest and the signature's tag.
    pub fn sign(reference: &str, key: &Path, access: &Access) -> Result<(String, String)> {
        let reference = OciRef::parse(reference)?;
        let runtime = runtime()?;
        let registry = connect(&reference, access)?;
        let digest = registry.resolve(runtime.handle(), &reference, registry.deadline())?;
        let (client, auth) = registry.push_access(runtime.handle())?;
        let tag = super::verify::push_signature(&client, auth, runtime.handle(), &reference, &digest, key)?;
        Ok((digest, tag.to_string()))
    }

    /// Pulls `reference` into a store at `store_dir` with every check the plugin makes (under
    /// `verify`: `off`, `digest` or a public key file); returns the manifest digest and the
    /// component's file.
    pub fn pull(reference: &str, verify: Option<&str>, store_dir: &Path, access: &Access) -> Result<(String, PathBuf)> {
        let reference = OciRef::parse(reference)?;
        let verify = match verify.map(str::trim) {
            None | Some("off") => Verify::Off,
            Some("digest") => {
                anyhow::ensure!(!reference.follows(), "--verify digest takes a pinned reference (@sha256:...)");
                Verify::Digest
            }
            Some(key) => Verify::Key(PathBuf::from(key)),
        };
        let runtime = runtime()?;
        let registry = connect(&reference, access)?;
        let store = ArtifactStore::open(store_dir)?;
        let deadline = registry.deadline();
        let digest = registry.resolve(runtime.handle(), &reference, deadline)?;
        let artifact = registry.pull(runtime.handle(), &reference, &digest, &verify, &store, deadline)?;
        Ok((artifact.manifest, artifact.path))
    }

    /// Whether `text` is an `oci://` reference.
    pub fn is_reference(text: &str) -> bool {
        super::is_reference(text)
    }
}

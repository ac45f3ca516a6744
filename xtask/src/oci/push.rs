//! Pushing images through the OCI distribution API with `oci-client`: blobs first (skipping those
//! the registry has), then the manifest as our exact bytes, so the digest the registry stores is the
//! one `oci build` computed. The registry's `Docker-Content-Digest` is checked against it.

use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use super::destination::Destination;
use super::layout::{Image, MANIFEST_MEDIA_TYPE};

pub struct Registry {
    client: Client,
    runtime: tokio::runtime::Runtime,
    auth: RegistryAuth,
}

impl Registry {
    /// A client for the registry; `insecure` speaks plain HTTP instead of HTTPS; `ca_certificate`
    /// (PEM) is trusted besides the system's roots, for a registry with a private CA.
    pub fn connect(
        insecure: bool,
        ca_certificate: Option<Vec<u8>>,
        auth: RegistryAuth,
    ) -> Result<Registry, String> {
        // reqwest is built without a default TLS provider (to keep aws-lc out); ring serves. An
        // error only means a provider is already installed, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: if insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(120)),
            extra_root_certificates: ca_certificate
                .into_iter()
                .map(|data| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data,
                })
                .collect(),
            ..ClientConfig::default()
        };
        let client = Client::try_from(config)
            .map_err(|error| format!("cannot create the registry client: {error}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| format!("cannot start the async runtime: {error}"))?;
        Ok(Registry {
            client,
            runtime,
            auth,
        })
    }

    /// Pushes `image` as `destination`'s image of `filter`; returns the registry's manifest digest.
    pub fn push(
        &self,
        destination: &Destination,
        filter: &str,
        image: &Image,
    ) -> Result<String, String> {
        let name = destination.image(filter);
        let reference = Reference::with_tag(
            destination.host.clone(),
            destination.repository(filter),
            destination.tag.clone(),
        );
        let failed = |step: &str, error: oci_client::errors::OciDistributionError| {
            format!("{name}: {step}: {error}")
        };
        self.runtime.block_on(async {
            self.client
                .auth(&reference, &self.auth, RegistryOperation::Push)
                .await
                .map_err(|error| failed("authentication", error))?;
            for blob in image.referenced_blobs() {
                let present = self
                    .client
                    .blob_exists(&reference, &blob.digest)
                    .await
                    .map_err(|error| failed(&format!("checking blob {}", blob.digest), error))?;
                if !present {
                    self.client
                        .push_blob(&reference, blob.bytes.clone(), &blob.digest)
                        .await
                        .map_err(|error| failed(&format!("uploading blob {}", blob.digest), error))?;
                }
            }
            self.client
                .push_manifest_raw(
                    &reference,
                    image.manifest.bytes.clone(),
                    http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
                )
                .await
                .map_err(|error| failed("uploading the manifest", error))?;
            let stored_digest = self
                .client
                .fetch_manifest_digest(&reference, &self.auth)
                .await
                .map_err(|error| failed("reading back the manifest digest", error))?;
            if stored_digest != image.digest() {
                return Err(format!(
                    "{name}: the registry reports manifest digest {stored_digest}, but the pushed manifest is {}",
                    image.digest()
                ));
            }
            Ok(stored_digest)
        })
    }
}

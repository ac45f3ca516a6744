//! Certificates made at test time: a throw-away CA and server certificates it signs, written as
//! PEM files for Envoy and kept in memory for the Rust clients and servers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Result;

pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    certificate_der: CertificateDer<'static>,
    pem: String,
}

/// A server certificate for some DNS names, with its key.
pub struct ServerCertificate {
    pub chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl CertificateAuthority {
    pub fn new() -> Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "gateway-wasm test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let certificate = params.self_signed(&key).map_err(|e| e.to_string())?;
        Ok(Self {
            pem: certificate.pem(),
            certificate_der: certificate.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub fn issue(&self, dns_names: &[&str]) -> Result<ServerCertificate> {
        let names: Vec<String> = dns_names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names).map_err(|e| e.to_string())?;
        if let Some(first) = dns_names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let certificate = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| e.to_string())?;
        Ok(ServerCertificate {
            chain: vec![certificate.der().clone(), self.certificate_der.clone()],
            key_der: key.serialize_der(),
            cert_pem: format!("{}{}", certificate.pem(), self.pem),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client configuration that trusts only this CA, offering `alpn` protocols.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.certificate_der.clone())
            .map_err(|e| e.to_string())?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

impl ServerCertificate {
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// Writes `NAME.crt` and `NAME.key` into `dir`; returns their paths for an Envoy config.
    pub fn write_pem(&self, dir: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.cert_pem).map_err(|e| e.to_string())?;
        std::fs::write(&key, &self.key_pem).map_err(|e| e.to_string())?;
        Ok((cert, key))
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

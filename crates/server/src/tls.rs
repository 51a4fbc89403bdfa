//! TLS setup with rustls (ring provider): configured PEM files, or a self-signed certificate generated on first run.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no PEM private key found")]
    NoKey { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("certificate and key do not match or are unusable: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Builds the rustls server configuration. With empty `cert`/`key`, uses (creating it on first run) a self-signed
/// certificate for `domain` under `data_dir/tls/`.
pub fn server_config(cert: &str, key: &str, domain: &str, data_dir: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert_path, key_path) = if cert.is_empty() {
        ensure_self_signed(domain, &data_dir.join("tls"))?
    } else {
        (PathBuf::from(cert), PathBuf::from(key))
    };
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

fn ensure_self_signed(domain: &str, dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write { path: dir.into(), source })?;
    let names = vec![domain.to_owned(), format!("*.{domain}")];
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(names)?;
    write_private(&key_path, key_pair.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, cert.pem()).map_err(|source| TlsError::Write { path: cert_path.clone(), source })?;
    tracing::info!(path = %cert_path.display(), "generated a self-signed certificate");
    Ok((cert_path, key_path))
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| TlsError::Write { path: path.into(), source })?;
    f.write_all(data).map_err(|source| TlsError::Write { path: path.into(), source })
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>, TlsError> {
    std::fs::File::open(path).map(BufReader::new).map_err(|source| TlsError::Read { path: path.into(), source })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut open(path)?)
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read { path: path.into(), source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.into() });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut open(path)?)
        .map_err(|source| TlsError::Read { path: path.into(), source })?
        .ok_or_else(|| TlsError::NoKey { path: path.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        server_config("", "", "example.org", dir.path()).unwrap();
        let pem = std::fs::read(dir.path().join("tls/cert.pem")).unwrap();
        server_config("", "", "example.org", dir.path()).unwrap();
        assert_eq!(pem, std::fs::read(dir.path().join("tls/cert.pem")).unwrap());
    }

    #[test]
    fn mismatched_key_is_a_clear_error() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        server_config("", "", "a.example", a.path()).unwrap();
        server_config("", "", "b.example", b.path()).unwrap();
        let cert = a.path().join("tls/cert.pem");
        let key = b.path().join("tls/key.pem");
        let err = server_config(cert.to_str().unwrap(), key.to_str().unwrap(), "a.example", a.path()).unwrap_err();
        assert!(matches!(err, TlsError::Rustls(_)), "{err}");
        let err = server_config("/nonexistent/c.pem", "/nonexistent/k.pem", "a", a.path()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/c.pem"), "{err}");
        let err = server_config(key.to_str().unwrap(), key.to_str().unwrap(), "a", a.path()).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
    }
}

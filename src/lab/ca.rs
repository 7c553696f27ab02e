//! The test internet's certificate authority: a root made at start, and per-host leaf
//! certificates (valid, expired, for the wrong name, or from a CA nobody trusts) issued on demand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

/// Which certificate a policy host presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// Valid for the SNI name, from the trusted lab CA.
    Valid,
    /// Valid name, but expired in 2021.
    Expired,
    /// From the trusted CA, but for another name.
    WrongName,
    /// Valid name, issued by a CA the scanner does not trust.
    Untrusted,
    /// Valid name, from the trusted CA, valid only from 2098 on.
    NotYetValid,
    /// Valid name, signed by its own key.
    SelfSigned,
    /// Valid name, issued by the lab intermediate, which the server does not send.
    MissingIntermediate,
    /// Valid name, issued by the lab intermediate, sent with the leaf (a complete chain).
    ViaIntermediate,
    /// `*.` and the SNI name without its left-most label, from the trusted CA.
    Wildcard,
    /// Valid name, from the trusted CA, expiring seven days after it is issued.
    ExpiringSoon,
}

/// The lab CA, plus a cache of issued leaves.
pub struct LabCa {
    trusted: Issuer<'static, KeyPair>,
    trusted_pem: String,
    trusted_der: CertificateDer<'static>,
    intermediate: Issuer<'static, KeyPair>,
    intermediate_der: CertificateDer<'static>,
    untrusted: Issuer<'static, KeyPair>,
    /// One key for every leaf: generating keys per host would dominate the benchmarks.
    leaf_key: KeyPair,
    issued: Mutex<HashMap<(String, CertKind), Arc<CertifiedKey>>>,
}

/// Leaves kept before the cache is cleared (memory stays bounded in million-domain runs).
const CACHE_LIMIT: usize = 4096;

impl LabCa {
    pub fn new() -> Result<Self, rcgen::Error> {
        let (trusted, trusted_pem, trusted_der) = make_root("mta-sts-scan test internet root")?;
        let (untrusted, _, _) = make_root("untrusted root")?;
        let (intermediate, intermediate_der) =
            make_intermediate("mta-sts-scan test internet intermediate", &trusted)?;
        Ok(LabCa {
            trusted,
            trusted_pem,
            trusted_der,
            intermediate,
            intermediate_der,
            untrusted,
            leaf_key: KeyPair::generate()?,
            issued: Mutex::new(HashMap::new()),
        })
    }

    /// The root certificate, PEM, for the scanner's `--ca-file`.
    pub fn root_pem(&self) -> &str {
        &self.trusted_pem
    }

    /// The root certificate, DER.
    pub fn root_der(&self) -> CertificateDer<'static> {
        self.trusted_der.clone()
    }

    /// A trust store holding only the lab root.
    pub fn root_store(&self) -> rustls::RootCertStore {
        let mut store = rustls::RootCertStore::empty();
        // The root is made above and always parses; an error would leave the store empty,
        // which every test notices.
        let _ = store.add(self.root_der());
        store
    }

    /// The certificate and key `host` presents for `kind`, issued on first use.
    pub fn certified_key(
        &self,
        host: &str,
        kind: CertKind,
        provider: &Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Arc<CertifiedKey>, String> {
        let key = (host.to_owned(), kind);
        if let Some(found) = self
            .issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(found.clone());
        }
        let name = match kind {
            CertKind::WrongName => format!("not-{host}"),
            CertKind::Wildcard => match host.split_once('.') {
                Some((_, parent)) => format!("*.{parent}"),
                None => host.to_owned(),
            },
            _ => host.to_owned(),
        };
        let mut params = CertificateParams::new(vec![name.clone()]).map_err(|e| e.to_string())?;
        params.distinguished_name.push(DnType::CommonName, name);
        match kind {
            CertKind::Expired => {
                params.not_before = date_time_ymd(2020, 1, 1);
                params.not_after = date_time_ymd(2021, 1, 1);
            }
            CertKind::NotYetValid => {
                params.not_before = date_time_ymd(2098, 1, 1);
                params.not_after = date_time_ymd(2099, 1, 1);
            }
            CertKind::ExpiringSoon => {
                use chrono::Datelike;
                let soon = chrono::Utc::now() + chrono::Duration::days(7);
                params.not_before = date_time_ymd(2024, 1, 1);
                params.not_after = date_time_ymd(soon.year(), soon.month() as u8, soon.day() as u8);
            }
            _ => {
                params.not_before = date_time_ymd(2024, 1, 1);
                params.not_after = date_time_ymd(2099, 1, 1);
            }
        }
        let issuer = match kind {
            CertKind::Untrusted => &self.untrusted,
            CertKind::MissingIntermediate | CertKind::ViaIntermediate => &self.intermediate,
            _ => &self.trusted,
        };
        let cert = if kind == CertKind::SelfSigned {
            params.self_signed(&self.leaf_key)
        } else {
            params.signed_by(&self.leaf_key, issuer)
        }
        .map_err(|e| e.to_string())?;
        let mut chain = vec![CertificateDer::from(cert.der().to_vec())];
        if kind == CertKind::ViaIntermediate {
            chain.push(self.intermediate_der.clone());
        }
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let signing = provider
            .key_provider
            .load_private_key(key_der)
            .map_err(|e| e.to_string())?;
        let certified = Arc::new(CertifiedKey::new(chain, signing));
        let mut issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        if issued.len() >= CACHE_LIMIT {
            issued.clear();
        }
        issued.insert(key, certified.clone());
        Ok(certified)
    }
}

type LabIssuer = Issuer<'static, KeyPair>;

/// The parameters of a lab CA certificate (root or intermediate) named `name`.
fn ca_params(name: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2099, 1, 1);
    Ok(params)
}

fn make_root(name: &str) -> Result<(LabIssuer, String, CertificateDer<'static>), rcgen::Error> {
    let params = ca_params(name)?;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let der = CertificateDer::from(cert.der().to_vec());
    Ok((Issuer::new(params, key), cert.pem(), der))
}

/// A CA certificate signed by `root`, for chains that need an intermediate.
fn make_intermediate(
    name: &str,
    root: &LabIssuer,
) -> Result<(LabIssuer, CertificateDer<'static>), rcgen::Error> {
    let params = ca_params(name)?;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, root)?;
    let der = CertificateDer::from(cert.der().to_vec());
    Ok((Issuer::new(params, key), der))
}

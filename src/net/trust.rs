//! Which certificate authorities the policy fetch (and the MX probe) trusts: by default a pinned,
//! versioned copy of Mozilla's root program (webpki-root-certs), so two machines give the same
//! `policy_tls_invalid` verdicts for the same domain; the operating system's store on request.

use std::fmt::Write as _;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The version of the Mozilla root set compiled in: the `webpki-root-certs` crate in
/// `Cargo.lock` (a test keeps the two equal).
pub const MOZILLA_ROOTS_VERSION: &str = "webpki-root-certs 1.0.11";

/// Where the trust anchors come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TrustStore {
    /// Mozilla's roots as compiled in ([`MOZILLA_ROOTS_VERSION`]): the same on every machine.
    #[default]
    Mozilla,
    /// The operating system's certificate store (verdicts depend on the machine).
    System,
}

impl TrustStore {
    pub const fn as_str(self) -> &'static str {
        match self {
            TrustStore::Mozilla => "mozilla",
            TrustStore::System => "system",
        }
    }
}

impl FromStr for TrustStore {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "mozilla" => Ok(TrustStore::Mozilla),
            "system" => Ok(TrustStore::System),
            other => Err(format!(
                "unknown trust store {other:?}: use mozilla or system"
            )),
        }
    }
}

/// The Mozilla trust anchors, DER-encoded.
pub fn mozilla_roots() -> impl Iterator<Item = &'static [u8]> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|certificate| certificate.as_ref())
}

/// The same trust anchors as a rustls root store, for the MX probe (spec §7: "the policy fetch's
/// trust roots"). The system store is read through rustls-native-certs.
pub fn root_store(
    store: TrustStore,
    extra_pem: Option<&[u8]>,
) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match store {
        TrustStore::Mozilla => {
            for der in mozilla_roots() {
                roots
                    .add(CertificateDer::from(der))
                    .map_err(|e| format!("a built-in root certificate is unreadable: {e}"))?;
            }
        }
        TrustStore::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err("the system certificate store holds no usable root".to_owned());
            }
        }
    }
    if let Some(pem) = extra_pem {
        for certificate in CertificateDer::pem_slice_iter(pem) {
            let certificate = certificate.map_err(|e| format!("cannot read the CA file: {e}"))?;
            roots
                .add(certificate)
                .map_err(|e| format!("the CA file holds an unusable certificate: {e}"))?;
        }
    }
    Ok(roots)
}

/// Names the store for run metadata and summaries: which set, its version, how many anchors
/// and a short hash of them (so a result says exactly what it was judged against), plus the
/// extra CA file when there is one.
pub fn describe(store: TrustStore, extra_pem: Option<&[u8]>) -> String {
    let mut text = match store {
        TrustStore::Mozilla => {
            let mut hasher = Sha256::new();
            let mut count = 0usize;
            for der in mozilla_roots() {
                hasher.update(der);
                count += 1;
            }
            let digest = hasher.finalize();
            let mut short = String::with_capacity(16);
            for byte in digest.iter().take(8) {
                let _ = write!(short, "{byte:02x}");
            }
            format!("mozilla ({MOZILLA_ROOTS_VERSION}, {count} anchors, sha256:{short})")
        }
        TrustStore::System => "system (the operating system's certificate store)".to_owned(),
    };
    if let Some(pem) = extra_pem {
        let digest = Sha256::digest(pem);
        let _ = write!(text, " + --ca-file sha256:");
        for byte in digest.iter().take(8) {
            let _ = write!(text, "{byte:02x}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_version_is_the_locked_one() {
        let lock = include_str!("../../Cargo.lock");
        let locked = lock
            .split("[[package]]")
            .find(|block| block.contains("name = \"webpki-root-certs\""))
            .and_then(|block| block.lines().find(|l| l.starts_with("version = ")))
            .map(|line| line.trim_start_matches("version = ").trim_matches('"'));
        assert_eq!(
            locked.map(|v| format!("webpki-root-certs {v}")).as_deref(),
            Some(MOZILLA_ROOTS_VERSION)
        );
    }

    #[test]
    fn names_parse_and_describe() {
        for (name, store) in [
            ("mozilla", TrustStore::Mozilla),
            ("system", TrustStore::System),
        ] {
            assert_eq!(name.parse::<TrustStore>(), Ok(store));
            assert_eq!(store.as_str(), name);
        }
        assert!("os".parse::<TrustStore>().is_err());
        let text = describe(TrustStore::Mozilla, Some(b"pem"));
        assert!(
            text.starts_with("mozilla (webpki-root-certs 1.0."),
            "{text}"
        );
        assert!(text.contains(" anchors, sha256:"), "{text}");
        assert!(text.contains("+ --ca-file sha256:"), "{text}");
        assert!(mozilla_roots().count() > 100);
        let roots = root_store(TrustStore::Mozilla, None).unwrap();
        assert_eq!(roots.len(), mozilla_roots().count());
    }
}

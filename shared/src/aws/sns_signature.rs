//! Checking that an SNS delivery is SNS's: the signature over the fields it signs, against
//! the signing certificate from SNS's own host (fetched once per cold start) or pinned by
//! `SEATCAP_SNS_CERT_PEM`; and that it came from the alert topic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{
    RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256, RsaParameters,
    UnparsedPublicKey,
};
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm, alg_id,
};
use tracing::warn;

use crate::sns::{Digest, Inauthentic, Signed, check_certificate_for, digest_of};
use crate::web::WebClient;

/// How deliveries are checked (`SEATCAP_SNS_SIGNATURE`, `SEATCAP_SNS_CERT_PEM`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Fetch the certificate each message names, from SNS's own host.
    Fetch,
    /// One certificate for every message (tests, accounts with no way out to SNS's host).
    Pinned(Vec<u8>),
    /// No check: local runs only. Warned about at every cold start.
    Off,
}

impl Verification {
    /// The pinned certificate from its PEM text.
    pub fn pinned(pem: &str) -> Result<Verification, String> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .map(|der| Verification::Pinned(der.as_ref().to_vec()))
            .map_err(|e| format!("not a PEM certificate: {e}"))
    }
}

/// One delivery's signed fields and signature, as Lambda hands them over.
pub struct Delivery<'a> {
    pub signed: Signed<'a>,
    pub signature_version: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub signing_cert_url: Option<&'a str>,
}

pub struct SnsSignatures {
    verification: Verification,
    /// Only the alert topic's messages are alerts (`SEATCAP_ALERT_TOPIC_ARN`).
    topic: Option<String>,
    web: WebClient,
    /// Certificates by URL, fetched once per cold start.
    certificates: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

impl SnsSignatures {
    pub fn new(verification: Verification, topic: Option<String>, web: WebClient) -> SnsSignatures {
        if verification == Verification::Off {
            warn!(
                "SEATCAP_SNS_SIGNATURE=off: alerts are not checked to be SNS's; never deploy this"
            );
        }
        SnsSignatures {
            verification,
            topic,
            web,
            certificates: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` when the delivery is SNS's, from the alert topic, signed as it says.
    pub async fn check(&self, delivery: &Delivery<'_>) -> Result<(), Inauthentic> {
        if self.verification == Verification::Off {
            return Ok(());
        }
        let signed = &delivery.signed;
        if signed.kind != "Notification" {
            return Err(Inauthentic::NotANotification(signed.kind.to_owned()));
        }
        if let Some(expected) = &self.topic
            && signed.topic_arn != expected
        {
            return Err(Inauthentic::WrongTopic {
                found: signed.topic_arn.to_owned(),
                expected: expected.clone(),
            });
        }
        let version = delivery
            .signature_version
            .ok_or(Inauthentic::Missing("SignatureVersion"))?;
        let digest = digest_of(version)?;
        let signature = delivery
            .signature
            .ok_or(Inauthentic::Missing("Signature"))?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature)
            .map_err(|_| Inauthentic::BadSignature)?;
        // Whatever signs it, the certificate a delivery names must be SNS's, of the topic's
        // region: a pinned certificate does not excuse a delivery that names another.
        if let Some(url) = delivery.signing_cert_url {
            check_certificate_for(url, signed.topic_arn)?;
        }
        let certificate = match &self.verification {
            Verification::Pinned(der) => Arc::new(der.clone()),
            _ => {
                let url = delivery
                    .signing_cert_url
                    .ok_or(Inauthentic::Missing("SigningCertUrl"))?;
                self.certificate(url).await?
            }
        };
        verify(
            &certificate,
            digest,
            signed.string_to_sign().as_bytes(),
            &signature,
        )
    }

    async fn certificate(&self, url: &str) -> Result<Arc<Vec<u8>>, Inauthentic> {
        if let Some(known) = self
            .certificates
            .lock()
            .ok()
            .and_then(|c| c.get(url).cloned())
        {
            return Ok(known);
        }
        let failed = |e: String| Inauthentic::Certificate(format!("{url}: {e}"));
        let response = self
            .web
            .get()
            .map_err(failed)?
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| failed(e.to_string()))?;
        let pem = response.bytes().await.map_err(|e| failed(e.to_string()))?;
        let der = CertificateDer::from_pem_slice(&pem).map_err(|e| failed(e.to_string()))?;
        let der = Arc::new(der.as_ref().to_vec());
        if let Ok(mut known) = self.certificates.lock() {
            known.insert(url.to_owned(), der.clone());
        }
        Ok(der)
    }
}

/// The signature check itself: `signature` over `message` by the key of `certificate`.
fn verify(
    certificate: &[u8],
    digest: Digest,
    message: &[u8],
    signature: &[u8],
) -> Result<(), Inauthentic> {
    let der = CertificateDer::from(certificate);
    let cert = webpki::EndEntityCert::try_from(&der)
        .map_err(|e| Inauthentic::Certificate(format!("not an X.509 certificate: {e}")))?;
    let algorithm = RsaPkcs1(match digest {
        Digest::Sha1 => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        Digest::Sha256 => &RSA_PKCS1_2048_8192_SHA256,
    });
    cert.verify_signature(&algorithm, message, signature)
        .map_err(|_| Inauthentic::BadSignature)
}

/// RSA PKCS#1 v1.5 with the digest SNS's SignatureVersion names. webpki offers no SHA-1
/// (it is for TLS, which dropped it); SNS's version 1 still uses it.
#[derive(Debug)]
struct RsaPkcs1(&'static RsaParameters);

impl SignatureVerificationAlgorithm for RsaPkcs1 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        UnparsedPublicKey::new(self.0, public_key)
            .verify(message, signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        // Used by webpki only for certificates' own signatures, never for a message's.
        alg_id::RSA_PKCS1_SHA256
    }
}

//! What makes an SNS notification authentic, as plain rules: the text SNS signs, and where
//! its signing certificate may come from. The signature itself is checked by the adapter.

/// The fields of an SNS notification that its signature covers, as Lambda delivers them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed<'a> {
    pub kind: &'a str,
    pub message_id: &'a str,
    pub message: &'a str,
    pub subject: Option<&'a str>,
    pub timestamp: &'a str,
    pub topic_arn: &'a str,
}

/// The digest a notification is signed with: `SignatureVersion` 1 is SHA1withRSA, 2 is
/// SHA256withRSA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    Sha1,
    Sha256,
}

/// Why a delivery is not taken as SNS's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Inauthentic {
    #[error("the message is a `{0}`, not a `Notification`")]
    NotANotification(String),
    #[error("the `{0}` field is missing")]
    Missing(&'static str),
    #[error("SignatureVersion `{0}` is neither 1 nor 2")]
    UnknownSignatureVersion(String),
    #[error(
        "the signing certificate URL `{0}` is not an https URL of sns.<region>.amazonaws.com ending in .pem"
    )]
    ForeignCertificateUrl(String),
    #[error(
        "the signing certificate URL `{url}` names region {found}, but the topic is in {topic}: SNS signs with its own region's certificate"
    )]
    CertificateOfAnotherRegion {
        url: String,
        found: String,
        topic: String,
    },
    #[error("the message came from topic `{found}`, not the alert topic `{expected}`")]
    WrongTopic { found: String, expected: String },
    #[error("the signing certificate could not be had: {0}")]
    Certificate(String),
    #[error("the signature does not verify against the signing certificate")]
    BadSignature,
}

impl Signed<'_> {
    /// The text SNS signs for a notification: each field's name and value on lines of their
    /// own, in this order, `Subject` only when the message has one.
    pub fn string_to_sign(&self) -> String {
        let mut text = format!(
            "Message\n{}\nMessageId\n{}\n",
            self.message, self.message_id
        );
        if let Some(subject) = self.subject {
            text.push_str(&format!("Subject\n{subject}\n"));
        }
        text.push_str(&format!(
            "Timestamp\n{}\nTopicArn\n{}\nType\n{}\n",
            self.timestamp, self.topic_arn, self.kind
        ));
        text
    }
}

pub fn digest_of(signature_version: &str) -> Result<Digest, Inauthentic> {
    match signature_version {
        "1" => Ok(Digest::Sha1),
        "2" => Ok(Digest::Sha256),
        other => Err(Inauthentic::UnknownSignatureVersion(other.to_owned())),
    }
}

/// Whether `url` may serve the signing certificate of a message from `topic_arn`:
/// `https://sns.<the topic's region>.amazonaws.com/....pem` (see [`certificate_region`]).
/// SNS signs a topic's messages with its own region's certificate, so another region's
/// names a certificate this topic's messages are never signed with.
pub fn check_certificate_for(url: &str, topic_arn: &str) -> Result<(), Inauthentic> {
    let found = certificate_region(url)?;
    let topic = topic_arn.split(':').nth(3).unwrap_or_default();
    if found == topic {
        Ok(())
    } else {
        Err(Inauthentic::CertificateOfAnotherRegion {
            url: url.to_owned(),
            found: found.to_owned(),
            topic: topic.to_owned(),
        })
    }
}

/// Whether `url` may serve SNS's signing certificate: `https://sns.<region>.amazonaws.com/
/// ....pem` (or `.amazonaws.com.cn`), with no user, port, query or fragment. Anything else
/// would let a forger name a certificate of their own.
pub fn check_certificate_url(url: &str) -> Result<(), Inauthentic> {
    certificate_region(url).map(drop)
}

/// The region of an SNS certificate URL of the accepted shape.
pub fn certificate_region(url: &str) -> Result<&str, Inauthentic> {
    let foreign = || Inauthentic::ForeignCertificateUrl(url.to_owned());
    let rest = url.strip_prefix("https://").ok_or_else(foreign)?;
    let (host, path) = rest.split_once('/').ok_or_else(foreign)?;
    let region = host
        .strip_prefix("sns.")
        .and_then(|h| {
            h.strip_suffix(".amazonaws.com")
                .or_else(|| h.strip_suffix(".amazonaws.com.cn"))
        })
        .ok_or_else(foreign)?;
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let path_ok = path.ends_with(".pem") && !path.contains(['?', '#', '@']) && !path.contains("..");
    if region_ok && path_ok {
        Ok(region)
    } else {
        Err(foreign())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_string_to_sign_is_snss_with_and_without_a_subject() {
        let mut signed = Signed {
            kind: "Notification",
            message_id: "m-1",
            message: "AWS Budget Notification",
            subject: Some("AWS Budgets: x"),
            timestamp: "2026-11-21T09:14:07.512Z",
            topic_arn: "arn:aws:sns:us-east-1:123456789012:alerts",
        };
        assert_eq!(
            signed.string_to_sign(),
            "Message\nAWS Budget Notification\nMessageId\nm-1\nSubject\nAWS Budgets: x\n\
             Timestamp\n2026-11-21T09:14:07.512Z\nTopicArn\narn:aws:sns:us-east-1:123456789012:alerts\n\
             Type\nNotification\n"
        );
        signed.subject = None;
        assert!(!signed.string_to_sign().contains("Subject"));
    }

    #[test]
    fn only_snss_own_hosts_serve_the_certificate() {
        for good in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem",
        ] {
            assert_eq!(check_certificate_url(good), Ok(()), "{good}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/a.pem",
            "https://sns.us-east-1.amazonaws.com.evil.com/a.pem",
            "https://evil.com/sns.us-east-1.amazonaws.com/a.pem",
            "https://sns.us-east-1.amazonaws.com:8443/a.pem",
            "https://user@sns.us-east-1.amazonaws.com/a.pem",
            "https://sns.us-east-1.amazonaws.com/a.pem?x=1",
            "https://sns.us-east-1.amazonaws.com/a.txt",
            "https://sns..amazonaws.com/a.pem",
            "https://s3.us-east-1.amazonaws.com/a.pem",
            "",
        ] {
            assert!(check_certificate_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_name_their_digest() {
        assert_eq!(digest_of("1"), Ok(Digest::Sha1));
        assert_eq!(digest_of("2"), Ok(Digest::Sha256));
        assert!(digest_of("3").is_err());
    }

    #[test]
    fn the_certificate_is_the_topics_regions() {
        let topic = "arn:aws:sns:us-east-1:123456789012:seatcap-budget-alerts";
        let ours = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem";
        assert_eq!(check_certificate_for(ours, topic), Ok(()));
        let theirs = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem";
        assert!(matches!(
            check_certificate_for(theirs, topic),
            Err(Inauthentic::CertificateOfAnotherRegion { .. })
        ));
        assert!(check_certificate_for("https://evil.example/x.pem", topic).is_err());
    }
}

//! What a detector found: [`DetectorKind`], its name in findings, and its default data class.

use std::fmt;
use std::sync::Arc;

/// The kind of sensitive value a detector recognises.
///
/// Built-in kinds have fixed names (see [`DetectorKind::name`]); custom detectors from the
/// configuration carry their own name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DetectorKind {
    Email,
    Phone,
    PaymentCard,
    Iban,
    Ssn,
    IpAddress,
    DateOfBirth,
    PrivateKey,
    Jwt,
    AwsAccessKey,
    GithubToken,
    SlackToken,
    StripeKey,
    GoogleApiKey,
    OpenAiKey,
    BearerToken,
    /// The value assigned to a `password`-like key (`password: hunter2`).
    Password,
    /// A high-entropy string near a keyword such as `secret` or `api_key`.
    GenericSecret,
    /// A detector from [`crate::DlpConfig::custom`], by name.
    Custom(Arc<str>),
}

impl DetectorKind {
    /// Every built-in kind, in a stable order.
    pub const BUILTIN: [DetectorKind; 18] = [
        DetectorKind::Email,
        DetectorKind::Phone,
        DetectorKind::PaymentCard,
        DetectorKind::Iban,
        DetectorKind::Ssn,
        DetectorKind::IpAddress,
        DetectorKind::DateOfBirth,
        DetectorKind::PrivateKey,
        DetectorKind::Jwt,
        DetectorKind::AwsAccessKey,
        DetectorKind::GithubToken,
        DetectorKind::SlackToken,
        DetectorKind::StripeKey,
        DetectorKind::GoogleApiKey,
        DetectorKind::OpenAiKey,
        DetectorKind::BearerToken,
        DetectorKind::Password,
        DetectorKind::GenericSecret,
    ];

    /// The detector's name: `email`, `payment_card`, ... or the custom detector's name.
    pub fn name(&self) -> &str {
        match self {
            DetectorKind::Email => "email",
            DetectorKind::Phone => "phone",
            DetectorKind::PaymentCard => "payment_card",
            DetectorKind::Iban => "iban",
            DetectorKind::Ssn => "ssn",
            DetectorKind::IpAddress => "ip_address",
            DetectorKind::DateOfBirth => "date_of_birth",
            DetectorKind::PrivateKey => "private_key",
            DetectorKind::Jwt => "jwt",
            DetectorKind::AwsAccessKey => "aws_access_key",
            DetectorKind::GithubToken => "github_token",
            DetectorKind::SlackToken => "slack_token",
            DetectorKind::StripeKey => "stripe_key",
            DetectorKind::GoogleApiKey => "google_api_key",
            DetectorKind::OpenAiKey => "openai_key",
            DetectorKind::BearerToken => "bearer_token",
            DetectorKind::Password => "password",
            DetectorKind::GenericSecret => "generic_secret",
            DetectorKind::Custom(name) => name,
        }
    }

    /// The kind as an audit finding kind: `dlp.<name>`.
    pub fn finding_kind(&self) -> String {
        format!("dlp.{}", self.name())
    }

    /// The built-in kind with this name.
    pub fn builtin(name: &str) -> Option<DetectorKind> {
        Self::BUILTIN.into_iter().find(|k| k.name() == name)
    }

    /// The data class a built-in kind maps to unless the configuration says otherwise.
    pub fn default_class(&self) -> &'static str {
        match self {
            DetectorKind::Email | DetectorKind::Phone | DetectorKind::DateOfBirth => "confidential",
            DetectorKind::PaymentCard | DetectorKind::Iban | DetectorKind::Ssn => "regulated",
            DetectorKind::IpAddress => "internal",
            _ => "restricted",
        }
    }
}

impl fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_round_trip() {
        for kind in DetectorKind::BUILTIN {
            assert_eq!(DetectorKind::builtin(kind.name()), Some(kind.clone()));
        }
        assert_eq!(DetectorKind::Ssn.finding_kind(), "dlp.ssn");
    }

    /// The config validates detector names against its own copy of the list.
    #[test]
    fn the_config_knows_every_builtin_detector() {
        let names: Vec<&str> = DetectorKind::BUILTIN
            .iter()
            .map(DetectorKind::name)
            .collect();
        assert_eq!(names, warden_core::config::BUILTIN_DETECTORS);
    }
}

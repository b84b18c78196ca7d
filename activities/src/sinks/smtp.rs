//! The SMTP sink: one e-mail per notification to every addressee, plain
//! text with an escaped HTML alternative, and a Message-ID derived from the
//! notification's idempotency key, so a repeated send is recognisable.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};

use super::Outcome;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (local relays and tests only).
    None,
    /// STARTTLS after connecting; refuses a server that does not offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// An SMTP relay.
#[derive(Clone)]
pub struct SmtpSink {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    description: String,
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink")
            .field("server", &self.description)
            .field("from", &self.from.to_string())
            .finish()
    }
}

/// Why the SMTP sink could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SmtpSinkError {
    /// The sender address does not parse.
    #[error("smtp from address {0:?} is not a mailbox")]
    From(String),
    /// The relay could not be configured (TLS parameters).
    #[error("cannot configure the SMTP relay {0}")]
    Relay(String, #[source] lettre::transport::smtp::Error),
}

/// Connection settings of the relay.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// User name and password, when the relay wants them.
    pub credentials: Option<(String, String)>,
    /// Sender, e.g. `Handoff <handoff@example.com>`.
    pub from: String,
    /// Limit on one whole send.
    pub timeout: Duration,
}

/// One e-mail to send.
#[derive(Debug, Clone)]
pub struct Email<'a> {
    /// Idempotency key of the notification; the Message-ID derives from it.
    pub key: &'a str,
    /// Recipients as `(name, address)`.
    pub to: &'a [(String, String)],
    /// Subject line.
    pub subject: &'a str,
    /// Plain-text body.
    pub text: &'a str,
    /// HTML body.
    pub html: &'a str,
}

impl SmtpSink {
    /// A sink sending through the relay of `config`.
    pub fn try_new(config: &SmtpConfig) -> Result<Self, SmtpSinkError> {
        super::install_crypto_provider();
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| SmtpSinkError::From(config.from.clone()))?;
        let relay_error = |e| SmtpSinkError::Relay(config.host.clone(), e);
        let builder = match config.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                .map_err(relay_error)?,
            SmtpTls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host).map_err(relay_error)?
            }
        };
        // Built once per worker: lettre's pool keeps connections to the
        // relay open between messages (idle ones close after a minute).
        let mut builder = builder.port(config.port).timeout(Some(config.timeout));
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            description: format!("{}:{}", config.host, config.port),
        })
    }

    /// Sends one e-mail. 4yz replies and connection problems are retried,
    /// 5yz replies are final.
    pub async fn send(&self, email: &Email<'_>) -> Outcome {
        let message = match self.message(email) {
            Ok(message) => message,
            Err(detail) => return Outcome::Failed { detail },
        };
        match self.transport.send(message).await {
            Ok(_) => Outcome::Delivered,
            Err(error) if error.is_permanent() => Outcome::Failed {
                detail: format!("smtp: {}", one_line(&error)),
            },
            Err(error) => Outcome::Retry {
                detail: format!("smtp: {}", one_line(&error)),
                after: None,
            },
        }
    }

    fn message(&self, email: &Email<'_>) -> Result<Message, String> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(email.subject)
            .message_id(Some(message_id_of(email.key)));
        for (name, address) in email.to {
            let mailbox = format!("{} <{address}>", quoted(name))
                .parse::<Mailbox>()
                .or_else(|_| address.parse::<Mailbox>())
                .map_err(|_| format!("{address:?} is not an e-mail address"))?;
            builder = builder.to(mailbox);
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                email.text.to_owned(),
                email.html.to_owned(),
            ))
            .map_err(|e| format!("cannot build the e-mail: {e}"))
    }
}

/// `<hex@handoff>`: the same for every send of one notification.
pub fn message_id_of(key: &str) -> String {
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    format!("<{}@handoff>", &digest[..32])
}

/// A display name as a quoted string, so commas and brackets stay in it.
fn quoted(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' || c == '\\' { '\'' } else { c })
        .collect();
    format!("\"{clean}\"")
}

fn one_line(error: &lettre::transport::smtp::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.replace(['\r', '\n'], " ")
}

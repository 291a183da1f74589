//! Outgoing mail. With `SMTP_URL` set it goes through that server (lettre, rustls); without
//! it, in stand-in mode and in tests, it is kept in the `mail_outbox` table, where a test or
//! a demo reads it. Neither the address nor the body ever reaches a log line.

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use sqlx::PgPool;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail could not be built: {0}")]
    Build(String),
    #[error("mail server: {0}")]
    Smtp(String),
    #[error("outbox: {0}")]
    Outbox(#[from] sqlx::Error),
}

/// One plain-text message to one recipient.
pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

pub async fn send(config: &Config, db: &PgPool, mail: &Mail<'_>) -> Result<(), MailError> {
    let Some(url) = &config.smtp_url else {
        sqlx::query!(
            "insert into mail_outbox (recipient, subject, body) values ($1, $2, $3)",
            mail.to,
            mail.subject,
            mail.body
        )
        .execute(db)
        .await?;
        return Ok(());
    };
    let from: Mailbox = config
        .mail_from
        .parse()
        .map_err(|_| MailError::Build("MAIL_FROM".into()))?;
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|_| MailError::Build("recipient address".into()))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.to_string())
        .map_err(|e| MailError::Build(e.to_string()))?;
    // The URL may carry credentials: errors name the kind of failure only.
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
        .map_err(|_| MailError::Smtp("SMTP_URL is not usable".into()))?
        .timeout(Some(std::time::Duration::from_secs(20)))
        .build();
    transport.send(message).await.map_err(|e| {
        let kind = if e.is_permanent() {
            "refused permanently"
        } else if e.is_transient() {
            "refused for now"
        } else if e.is_timeout() {
            "timed out"
        } else {
            "unreachable or failed"
        };
        MailError::Smtp(kind.into())
    })?;
    Ok(())
}

//! Outgoing mail. [`OutboxMailer`], the default, writes each mail to `mail_outbox` (where an admin
//! or a delivery worker reads it) and logs only recipient and kind: bodies carry secret tokens.

use futures_util::future::BoxFuture;
use nox_persistence::db::Database;
use nox_persistence::iam::mail::{self, NewMail};

use crate::error::ApiError;

/// One mail to send.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    /// `verify_email`, `password_reset`, `invitation`, ...
    pub kind: &'static str,
    pub subject: String,
    pub body: String,
}

/// Something that sends mail. A trait so a deployment can plug in SMTP or an API.
pub trait Mailer: Send + Sync {
    fn send<'a>(&'a self, mail: &'a Mail) -> BoxFuture<'a, Result<(), ApiError>>;
}

/// Writes mail to the `mail_outbox` table.
pub struct OutboxMailer {
    db: Database,
}

impl OutboxMailer {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

impl Mailer for OutboxMailer {
    fn send<'a>(&'a self, mail: &'a Mail) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            let id = mail::enqueue(
                self.db.pool(),
                NewMail {
                    to_email: &mail.to,
                    kind: mail.kind,
                    subject: &mail.subject,
                    body: &mail.body,
                },
            )
            .await?;
            tracing::info!(mail_id = %id, to = %mail.to, kind = mail.kind, "mail queued in outbox");
            Ok(())
        })
    }
}

//! `mail_outbox`: every mail the server sends, kept for delivery and for inspection.

use sqlx::PgPool;
use uuid::Uuid;

use crate::error::PersistenceError;

/// One outgoing mail.
#[derive(Debug, Clone)]
pub struct NewMail<'a> {
    pub to_email: &'a str,
    /// What the mail is (`verify_email`, `password_reset`, `invitation`, ...).
    pub kind: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

pub async fn enqueue(pool: &PgPool, mail: NewMail<'_>) -> Result<Uuid, PersistenceError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO mail_outbox (to_email, kind, subject, body) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(mail.to_email)
    .bind(mail.kind)
    .bind(mail.subject)
    .bind(mail.body)
    .fetch_one(pool)
    .await?)
}

//! Email: notifications that matter (payment receipts, cancellations,
//! expired orders) are also mailed, from the outbox (`email_send` jobs,
//! written in the same transaction as the notification, so each is mailed
//! at most once per notification and never blocks a request; an SMTP
//! outage delays them with backoff).
//!
//! Two rules keep us from mailing strangers: notification emails go only
//! to addresses the user has verified (until then the only email we send
//! is the verification link, `email_verify` jobs), and no address gets
//! more than `mail_daily_max_per_recipient` emails per UTC day (counted in
//! the database, so across nodes).
//!
//! With `smtp_url` set, mail goes through that server (lettre; `smtp://`
//! plain, `smtp://...?tls=required` STARTTLS, `smtps://` TLS). Unset (the
//! embedded default), each message is written to `data_dir/outbox-mail/`
//! as an `.eml` file a newcomer can open.

use std::path::PathBuf;
use std::sync::Arc;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use crate::domain::notification::{email_for, signup_attempt_email, verification_email, Email};
use crate::service::accounts::{Accounts, JOB_EMAIL_VERIFY};
use crate::service::outbox::{handler, payload_id, JobError, JobHandler};
use crate::store::sql::SqlStore;

pub use crate::store::sql::JOB_EMAIL_SEND;

#[derive(Clone)]
pub struct Mailer {
    sql: Arc<SqlStore>,
    accounts: Accounts,
    daily_max: u32,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    dir: PathBuf,
    from: Mailbox,
    public_url: String,
}

impl Mailer {
    pub fn new(
        sql: Arc<SqlStore>,
        accounts: Accounts,
        daily_max: u32,
        smtp_url: Option<&str>,
        data_dir: &std::path::Path,
        from: &str,
        public_url: &str,
    ) -> Result<Mailer, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("mail_from {from:?}: {e}"))?;
        let smtp = match smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| format!("smtp_url: {e}"))?
                    .timeout(Some(std::time::Duration::from_secs(10)))
                    .build(),
            ),
            None => None,
        };
        Ok(Mailer {
            sql,
            accounts,
            daily_max,
            smtp,
            dir: data_dir.join("outbox-mail"),
            from,
            public_url: public_url.to_string(),
        })
    }

    /// Build and send (or write) the email of one notification.
    pub async fn send_notification(&self, id: i64) -> Result<(), JobError> {
        let Some(n) = self.sql.notifications().notification(id).await? else {
            return Ok(());
        };
        let Some(user) = self.sql.accounts().user_by_id(n.user_id).await? else {
            return Ok(());
        };
        let Some(address) = user.email.clone() else {
            // Withdrawn, or an account without an address: nothing to send.
            return Ok(());
        };
        if user.email_verified_at.is_none() {
            // Nobody proved the address is this user's: it may be a
            // stranger's. Only the verification link goes there.
            tracing::info!(
                user = user.id,
                notification = n.id,
                "email not verified; notification not mailed"
            );
            return Ok(());
        }
        // Links in an email must work outside the app: absolute.
        let link = if n.link.starts_with('/') {
            format!("{}{}", self.public_url, n.link)
        } else {
            n.link.clone()
        };
        let mail = email_for(&n.kind, &n.title, &n.body, &link, &user.nickname);
        self.deliver(
            &address,
            &user.nickname,
            mail,
            &format!("notification-{}", n.id),
        )
        .await
    }

    /// Mail a fresh verification link to the user's address (the
    /// `email_verify` job). Verified meanwhile, or no address: nothing.
    pub async fn send_verification(&self, user_id: i64) -> Result<(), JobError> {
        let Some((user, address)) = self.addressee(user_id).await? else {
            return Ok(());
        };
        let Some(token) = self.accounts.issue_verification_token(user_id).await? else {
            return Ok(());
        };
        let link = format!("{}/#/verify-email?token={token}", self.public_url);
        let mail = verification_email(&user.nickname, &link);
        let id = format!("verify-{user_id}-{}", crate::domain::now_ms());
        self.deliver(&address, &user.nickname, mail, &id).await
    }

    /// Tell the owner of a verified address that someone tried to sign up
    /// with it (sign-up answers the same either way; this is where the
    /// owner learns of it). An unverified address gets nothing: it had its
    /// link at sign-up, and it may not be the owner's at all.
    pub async fn send_signup_attempt(&self, user_id: i64) -> Result<(), JobError> {
        let Some((user, address)) = self.addressee(user_id).await? else {
            return Ok(());
        };
        if user.email_verified_at.is_none() {
            return Ok(());
        }
        let mail = signup_attempt_email(&user.nickname, &format!("{}/#/login", self.public_url));
        let id = format!("attempt-{user_id}-{}", crate::domain::now_ms());
        self.deliver(&address, &user.nickname, mail, &id).await
    }

    /// The user and their address, if they still have one.
    async fn addressee(
        &self,
        user_id: i64,
    ) -> Result<Option<(crate::store::UserRecord, String)>, JobError> {
        let user = self.sql.accounts().user_by_id(user_id).await?;
        Ok(user.and_then(|u| u.email.clone().map(|a| (u, a))))
    }

    /// Send (or write) one email to `address`, within its daily quota.
    async fn deliver(
        &self,
        address: &str,
        nickname: &str,
        mail: Email,
        id: &str,
    ) -> Result<(), JobError> {
        let to: Mailbox = match format!("{nickname} <{address}>").parse() {
            Ok(m) => m,
            Err(_) => match address.parse() {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(mail = id, error = %e, "unusable email address; not mailed");
                    return Ok(());
                }
            },
        };
        let day = crate::domain::now_ms().div_euclid(86_400_000);
        if !self
            .sql
            .accounts()
            .take_mail_quota(address, day, self.daily_max)
            .await?
        {
            tracing::warn!(
                mail = id,
                max = self.daily_max,
                "daily email limit of this address reached; not mailed"
            );
            return Ok(());
        }
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .message_id(Some(format!("<{id}@jangteo>")))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .header(ContentTransferEncoding::Base64)
                            .body(mail.text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .header(ContentTransferEncoding::Base64)
                            .body(mail.html),
                    ),
            )
            .map_err(|e| format!("building the email: {e}"))?;
        match &self.smtp {
            Some(smtp) => {
                smtp.send(message).await.map_err(|e| format!("smtp: {e}"))?;
            }
            None => {
                tokio::fs::create_dir_all(&self.dir).await?;
                let path = self.dir.join(format!("{id}.eml"));
                tokio::fs::write(&path, message.formatted())
                    .await
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
                tracing::info!(mail = id, path = %path.display(), "email written (no smtp_url)");
                return Ok(());
            }
        }
        tracing::info!(mail = id, "email sent");
        Ok(())
    }

    pub fn job_handler(&self) -> (&'static str, JobHandler) {
        let send = handler(self, |mailer, payload| async move {
            mailer
                .send_notification(payload_id(&payload, "notification")?)
                .await
        });
        (JOB_EMAIL_SEND, send)
    }

    pub fn verify_job_handler(&self) -> (&'static str, JobHandler) {
        let verify = handler(self, |mailer, payload| async move {
            let user = payload_id(&payload, "user")?;
            if payload
                .get("attempt")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false)
            {
                mailer.send_signup_attempt(user).await
            } else {
                mailer.send_verification(user).await
            }
        });
        (JOB_EMAIL_VERIFY, verify)
    }
}

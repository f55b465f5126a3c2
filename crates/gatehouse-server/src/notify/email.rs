//! E-mail over SMTP (`lettre`, rustls): one message per outbox row, plain
//! text and HTML from the `email_notice.*` templates.

use std::time::Duration;

use askama::Template;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Failure, SmtpSecurity, SmtpSettings};
use gatehouse_store::notifications::Delivery;

pub(crate) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// What both bodies show.
#[derive(Template)]
#[template(path = "email_notice.txt")]
struct TextBody<'a> {
    m: &'a Fields<'a>,
}

#[derive(Template)]
#[template(path = "email_notice.html")]
struct HtmlBody<'a> {
    m: &'a Fields<'a>,
}

pub(crate) struct Fields<'a> {
    pub title: String,
    pub summary: &'a str,
    pub subject: &'a str,
    pub project: &'a str,
    pub stage: Option<&'a str>,
    pub actor: &'a str,
    pub comment: &'a str,
    pub link: String,
    pub event_id: &'a str,
    pub at: &'a str,
}

impl Mailer {
    pub(crate) fn new(s: &SmtpSettings, timeout: Duration) -> Result<Self, String> {
        let from: Mailbox = s
            .from
            .parse()
            .map_err(|e| format!("SMTP from address {:?}: {e}", s.from))?;
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned()).map_err(|e| format!("SMTP TLS for {host}: {e}"))
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
            .port(s.port)
            .timeout(Some(timeout));
        b = match s.security {
            SmtpSecurity::Starttls => b.tls(Tls::Required(tls(&s.host)?)),
            SmtpSecurity::Tls => b.tls(Tls::Wrapper(tls(&s.host)?)),
            SmtpSecurity::None => b.tls(Tls::None),
        };
        if let (Some(user), Some(pass)) = (&s.username, &s.password) {
            b = b.credentials(Credentials::new(user.clone(), pass.expose().to_owned()));
        }
        Ok(Self {
            transport: b.build(),
            from,
        })
    }

    pub(crate) async fn send(
        &self,
        d: &Delivery,
        public_url: &str,
    ) -> Result<Option<i64>, Failure> {
        let to: Mailbox = d
            .target
            .parse()
            .map_err(|e| Failure::final_(format!("address {:?}: {e}", d.target)))?;
        let n = &d.notice;
        let fields = Fields {
            title: n.title(),
            summary: &n.summary,
            subject: &n.subject,
            project: &n.project,
            stage: n.stage.as_deref(),
            actor: &n.actor,
            comment: &n.comment,
            link: format!("{public_url}{}", n.link),
            event_id: &d.event_id,
            at: &n.at,
        };
        let text = TextBody { m: &fields }
            .render()
            .map_err(|e| Failure::final_(format!("template: {e}")))?;
        let html = HtmlBody { m: &fields }
            .render()
            .map_err(|e| Failure::final_(format!("template: {e}")))?;
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(fields.title.clone())
            .message_id(Some(format!("<{}.{}@gatehouse>", d.event_id, d.id)))
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| Failure::final_(format!("message: {e}")))?;
        match self.transport.send(msg).await {
            Ok(resp) => Ok(format!("{}", resp.code()).parse().ok()),
            Err(e) => Err(Failure {
                code: e.status().and_then(|c| format!("{c}").parse().ok()),
                error: format!("SMTP: {e}"),
                final_: e.is_permanent(),
            }),
        }
    }
}

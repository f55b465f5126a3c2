//! Webhooks: the JSON body (or Slack's shape), Standard Webhooks signatures,
//! and the checks every call passes: http or https only, a host on the
//! administrator's allow-list, a resolved address that is not loopback,
//! link-local or private unless that address is listed itself, no redirects.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gatehouse_core::Timestamp;
use gatehouse_core::notify::WebhookFormat;
use gatehouse_store::notifications::{Delivery, Webhook};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::Failure;

/// The allow-list and the timeout of webhook calls.
#[derive(Debug, Clone)]
pub struct WebhookPolicy {
    allow: Vec<String>,
    timeout: Duration,
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, the Standard
/// Webhooks signature. A secret written `whsec_<base64>` is the key those
/// bytes decode to; any other secret is used as its UTF-8 bytes.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|b| STANDARD.decode(b).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

impl WebhookPolicy {
    pub fn new(allow: &[String], timeout: Duration) -> Self {
        Self {
            allow: allow
                .iter()
                .map(|h| {
                    h.trim()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_ascii_lowercase()
                })
                .filter(|h| !h.is_empty())
                .collect(),
            timeout,
        }
    }

    /// Webhooks are on when the allow-list names at least one host.
    pub fn enabled(&self) -> bool {
        !self.allow.is_empty()
    }

    fn listed(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.allow.contains(&host)
    }

    /// Checks a URL at registration: http or https, a host on the list.
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, String> {
        if !self.enabled() {
            return Err(
                "webhooks are off on this server: an administrator must list the hosts they may call (--webhook-allow-hosts)"
                    .into(),
            );
        }
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "scheme '{}' is not allowed; use http or https",
                parsed.scheme()
            ));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| "the URL has no host".to_owned())?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("credentials in the URL are not allowed; use the secret".into());
        }
        if !self.listed(host) {
            return Err(format!(
                "host '{host}' is not on this server's webhook allow-list"
            ));
        }
        Ok(parsed)
    }

    /// Resolves the URL's host now and picks an address that may be called.
    async fn resolve(&self, url: &reqwest::Url) -> Result<SocketAddr, String> {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| format!("cannot resolve '{host}': {e}"))?
            .collect();
        addrs
            .iter()
            .copied()
            .find(|a| !private(a.ip()) || self.listed(&a.ip().to_string()))
            .ok_or_else(|| {
                format!(
                    "'{host}' resolves only to loopback, link-local or private addresses ({}); list the address itself to allow it",
                    addrs.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ")
                )
            })
    }

    /// Calls one webhook once.
    pub(crate) async fn deliver(
        &self,
        hook: &Webhook,
        d: &Delivery,
        public_url: &str,
        now: Timestamp,
    ) -> Result<Option<i64>, Failure> {
        let url = self.check_url(&hook.url).map_err(Failure::final_)?;
        let addr = self.resolve(&url).await.map_err(Failure::retry)?;
        let n = &d.notice;
        let link = format!("{public_url}{}", n.link);
        let body = match hook.format {
            WebhookFormat::Json => json!({
                "id": d.event_id,
                "type": n.kind.as_str(),
                "timestamp": n.at,
                "data": {
                    "project": n.project,
                    "subject": n.subject,
                    "stage": n.stage,
                    "actor": n.actor,
                    "summary": n.summary,
                    "comment": n.comment,
                    "link": link,
                },
            }),
            WebhookFormat::Slack => json!({
                "text": format!("*{}*\n{}\n<{link}|Open in Gatehouse>", n.title(), n.summary),
            }),
        };
        let body = serde_json::to_vec(&body).expect("a JSON value serialises");
        let ts = now.as_micros() / 1_000_000;
        let signature = sign(&hook.secret, &d.event_id, ts, &body);
        let host = url.host_str().unwrap_or_default().to_owned();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(self.timeout)
            .resolve(&host, addr)
            .build()
            .map_err(|e| Failure::retry(format!("HTTP client: {e}")))?;
        let resp = client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", "gatehouse-webhooks")
            .header("webhook-id", &d.event_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::retry(format!("POST: {e}")))?;
        let code = i64::from(resp.status().as_u16());
        if resp.status().is_success() {
            Ok(Some(code))
        } else {
            Err(Failure {
                code: Some(code),
                error: format!("the endpoint answered {}", resp.status()),
                final_: false,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn refuses_hosts_schemes_and_credentials() {
        let p = WebhookPolicy::new(
            &["hooks.example.org".into(), "127.0.0.1".into()],
            Duration::from_secs(1),
        );
        assert!(p.check_url("https://hooks.example.org/x").is_ok());
        assert!(p.check_url("http://127.0.0.1:9/x").is_ok());
        assert!(
            p.check_url("ftp://hooks.example.org/x")
                .unwrap_err()
                .contains("scheme")
        );
        assert!(
            p.check_url("https://evil.example.org/x")
                .unwrap_err()
                .contains("allow-list")
        );
        assert!(p.check_url("https://u:p@hooks.example.org/").is_err());
        let off = WebhookPolicy::new(&[], Duration::from_secs(1));
        assert!(
            off.check_url("https://hooks.example.org/x")
                .unwrap_err()
                .contains("off")
        );
    }

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "100.64.0.1",
        ] {
            assert!(private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(!private(ip.parse().unwrap()), "{ip}");
        }
    }
}

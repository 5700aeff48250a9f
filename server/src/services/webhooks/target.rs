//! Where kiln may send a webhook. A namespace admin chooses the URL, so without a check kiln would make
//! requests for them into its own network: the cloud metadata service (169.254.169.254), the database's
//! port, an admin endpoint on loopback. Unless the operator allows private targets, every address a
//! host resolves to must be a public one, checked when the subscription is made and again, by the DNS
//! resolver the sender uses, at every attempt (a name that later resolves inward is refused then).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use kiln_core::ErrorCode;

use crate::error::Error;

/// Longest URL a subscription may hold.
const MAX_URL: usize = 2048;

fn invalid(message: impl Into<String>) -> Error {
    Error::bad_request(ErrorCode::InvalidWebhookUrl, message)
}

/// The URL, checked: http(s), a host, no credentials in it; when private targets are not allowed, a host
/// that resolves only to public addresses.
pub async fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, Error> {
    if url.len() > MAX_URL {
        return Err(invalid(format!(
            "a webhook URL is at most {MAX_URL} characters"
        )));
    }
    let parsed =
        reqwest::Url::parse(url).map_err(|e| invalid(format!("{url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(invalid(format!(
            "a webhook URL is https:// or http://, not {}://",
            parsed.scheme()
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "a webhook URL carries no credentials; deliveries are signed with the subscription's secret",
        ));
    }
    let Some(host) = parsed.host_str().map(str::to_owned) else {
        return Err(invalid(format!("{url:?} names no host")));
    };
    if allow_private {
        return Ok(parsed);
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses = resolve(&host, port)
        .await
        .map_err(|e| invalid(format!("cannot resolve {host}: {e}")))?;
    refuse_private(&host, &addresses).map_err(invalid)?;
    Ok(parsed)
}

async fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    // An IP literal in brackets ([::1]) resolves without them.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    Ok(tokio::net::lookup_host((bare, port)).await?.collect())
}

/// Err naming the first non-public address among `addresses`.
pub fn refuse_private(host: &str, addresses: &[SocketAddr]) -> Result<(), String> {
    match addresses.iter().find(|a| !is_public(a.ip())) {
        Some(address) => Err(format!(
            "{host} resolves to {}, which is not a public address (loopback, private, link-local, \
             carrier-grade NAT, multicast or reserved); the server's operator can allow such targets \
             with KILN_WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
            address.ip()
        )),
        None if addresses.is_empty() => Err(format!("{host} resolves to no address")),
        None => Ok(()),
    }
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            // IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks) carries an IPv4 address.
            if segments[..6].iter().all(|s| *s == 0) {
                return is_public_v4(Ipv4Addr::new(
                    (segments[6] >> 8) as u8,
                    segments[6] as u8,
                    (segments[7] >> 8) as u8,
                    segments[7] as u8,
                ));
            }
            // 6to4 2002:a.b.c.d::/48 reaches the IPv4 address it embeds.
            if segments[0] == 0x2002
                && !is_public_v4(Ipv4Addr::new(
                    (segments[1] >> 8) as u8,
                    segments[1] as u8,
                    (segments[2] >> 8) as u8,
                    segments[2] as u8,
                ))
            {
                return false;
            }
            let first = segments[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local fc00::/7, link-local fe80::/10, site-local fec0::/10 (deprecated).
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                // Documentation 2001:db8::/32; NAT64 64:ff9b::/96 reaches IPv4 space through a gateway.
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                || (first == 0x0064 && v6.segments()[1] == 0xff9b)
                // Discard-only 100::/64.
                || (first == 0x0100 && segments[1..4].iter().all(|s| *s == 0))
                || v6 == Ipv6Addr::UNSPECIFIED)
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        // Carrier-grade NAT 100.64.0.0/10, IETF protocol assignments 192.0.0.0/24, benchmarking
        // 198.18.0.0/15, reserved 240.0.0.0/4.
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

/// The sender's DNS resolver: the system's answer, refused when any address is not public.
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses = resolve(&host, 0).await?;
            refuse_private(&host, &addresses)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
            "::127.0.0.1",
            "::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
            "64:ff9b:1::1",
            "100::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[actix_web::test]
    async fn urls_into_the_servers_network_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/hook",
            "http://localhost:9000/hook",
            "http://10.0.0.5/hook",
        ] {
            let e = check_url(url, false).await.unwrap_err();
            assert!(
                e.to_string().contains("KILN_WEBHOOK_ALLOW_PRIVATE_TARGETS"),
                "{url}: {e}"
            );
            check_url(url, true).await.unwrap();
        }
        for url in [
            "ftp://example.com/",
            "not a url",
            "https://user:pw@example.com/",
            "file:///etc/passwd",
        ] {
            assert!(check_url(url, true).await.is_err(), "{url}");
        }
    }
}

//! `kiln webhook add|ls|show|set|rm|deliveries|redeliver`: a namespace's webhook subscriptions.

use clap::Subcommand;
use kiln_core::api::{
    CreatedWebhook, NewWebhook, WebhookDeliveries, WebhookDelivery, WebhookEventType,
    WebhookSubscription, WebhookSubscriptions, WebhookUpdate,
};
use kiln_core::{ModelRef, NamespaceName};

use super::browse::{date, print_json, table};
use crate::client::ApiClient;
use crate::error::CliError;

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Subscribe URL to the events of NAMESPACE, or of NAMESPACE/MODEL only; prints the signing secret
    /// once (namespace admins)
    Add {
        /// NAMESPACE or NAMESPACE/MODEL
        #[arg(value_parser = crate::parse_ref)]
        target: ModelRef,
        /// Where deliveries are POSTed (https://...)
        url: String,
        /// Events, comma-separated: version.ready, version.failed, version.deleted, alias.moved,
        /// manifest.published, benchmark.completed (default: all)
        #[arg(long, value_delimiter = ',')]
        events: Vec<WebhookEventType>,
        #[arg(long)]
        description: Option<String>,
    },
    /// A namespace's subscriptions
    #[command(visible_alias = "list")]
    Ls { namespace: NamespaceName },
    /// One subscription
    Show {
        namespace: NamespaceName,
        id: String,
    },
    /// Change a subscription's URL or events; --enable turns on one kiln disabled, --disable pauses it
    Set {
        namespace: NamespaceName,
        id: String,
        #[arg(long)]
        url: Option<String>,
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<WebhookEventType>>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
    /// Delete a subscription and its delivery log
    #[command(visible_alias = "remove")]
    Rm {
        namespace: NamespaceName,
        id: String,
    },
    /// A subscription's deliveries, newest first, with each try's answer
    Deliveries {
        namespace: NamespaceName,
        id: String,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Send a delivery again now, under its event id
    Redeliver {
        namespace: NamespaceName,
        id: String,
        delivery: String,
    },
}

fn path(namespace: &NamespaceName, rest: &str) -> String {
    format!("/namespaces/{namespace}/webhooks{rest}")
}

pub async fn run(client: &ApiClient, command: WebhookCommand, json: bool) -> Result<(), CliError> {
    match command {
        WebhookCommand::Add {
            target,
            url,
            events,
            description,
        } => {
            if target.version.is_some() || target.alias.is_some() {
                return Err(CliError::Usage(
                    "webhooks subscribe to NAMESPACE or NAMESPACE/MODEL, not a version".to_owned(),
                ));
            }
            let new = NewWebhook {
                url,
                events: if events.is_empty() {
                    WebhookEventType::ALL.to_vec()
                } else {
                    events
                },
                model: target.model.clone(),
                description,
            };
            let created: CreatedWebhook =
                client.post_json(&path(&target.namespace, ""), &new).await?;
            if json {
                print_json(&created);
            } else {
                print_subscription(&created.subscription);
                println!(
                    "secret: {}\n(shown only now: receivers verify the webhook-signature header with it)",
                    created.secret
                );
            }
            Ok(())
        }
        WebhookCommand::Ls { namespace } => {
            let listed: WebhookSubscriptions = client.get_json(&path(&namespace, "")).await?;
            if json {
                print_json(&listed);
                return Ok(());
            }
            let mut rows = table(&["ID", "MODEL", "URL", "EVENTS", "STATE"]);
            for s in &listed.subscriptions {
                rows.add_row(vec![
                    s.id.clone(),
                    s.model
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or("*".to_owned()),
                    s.url.clone(),
                    events_text(&s.events),
                    state(s),
                ]);
            }
            println!("{rows}");
            Ok(())
        }
        WebhookCommand::Show { namespace, id } => {
            let s: WebhookSubscription = client
                .get_json(&path(&namespace, &format!("/{id}")))
                .await?;
            if json {
                print_json(&s);
            } else {
                print_subscription(&s);
            }
            Ok(())
        }
        WebhookCommand::Set {
            namespace,
            id,
            url,
            events,
            enable,
            disable,
        } => {
            let update = WebhookUpdate {
                url,
                events,
                description: None,
                enabled: (enable || disable).then_some(enable),
            };
            let s: WebhookSubscription = client
                .patch_json(&path(&namespace, &format!("/{id}")), &update)
                .await?;
            if json {
                print_json(&s);
            } else {
                print_subscription(&s);
            }
            Ok(())
        }
        WebhookCommand::Rm { namespace, id } => {
            client.delete(&path(&namespace, &format!("/{id}"))).await?;
            if !json {
                println!("deleted webhook {id} of {namespace}");
            }
            Ok(())
        }
        WebhookCommand::Deliveries {
            namespace,
            id,
            limit,
        } => {
            let listed: WebhookDeliveries = client
                .get_json(&path(
                    &namespace,
                    &format!("/{id}/deliveries?limit={limit}"),
                ))
                .await?;
            if json {
                print_json(&listed);
                return Ok(());
            }
            let mut rows = table(&[
                "DELIVERY",
                "EVENT",
                "SUBJECT",
                "STATE",
                "TRIES",
                "LAST ANSWER",
            ]);
            for d in &listed.deliveries {
                rows.add_row(vec![
                    d.id.clone(),
                    d.event_type.clone(),
                    d.subject.clone(),
                    format!("{:?}", d.state).to_lowercase(),
                    d.attempts.to_string(),
                    last_answer(d),
                ]);
            }
            println!("{rows}");
            Ok(())
        }
        WebhookCommand::Redeliver {
            namespace,
            id,
            delivery,
        } => {
            let d: WebhookDelivery = client
                .post_json(
                    &path(
                        &namespace,
                        &format!("/{id}/deliveries/{delivery}/redeliver"),
                    ),
                    &serde_json::json!({}),
                )
                .await?;
            if json {
                print_json(&d);
            } else {
                println!("{} ({}) will be sent again now", d.id, d.event_type);
            }
            Ok(())
        }
    }
}

fn events_text(events: &[WebhookEventType]) -> String {
    events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn state(s: &WebhookSubscription) -> String {
    match (&s.enabled, &s.disabled_reason) {
        (true, _) if s.consecutive_failures > 0 => {
            format!("enabled ({} failures in a row)", s.consecutive_failures)
        }
        (true, _) => "enabled".to_owned(),
        (false, Some(reason)) => format!("disabled: {reason}"),
        (false, None) => "disabled".to_owned(),
    }
}

fn last_answer(d: &WebhookDelivery) -> String {
    let Some(attempt) = d.log.first() else {
        return "not tried yet".to_owned();
    };
    let answer = match (attempt.status, &attempt.error) {
        (Some(status), _) => format!("HTTP {status}"),
        (None, Some(error)) => error.clone(),
        (None, None) => "no answer".to_owned(),
    };
    format!(
        "{answer} in {} ms at {}",
        attempt.latency_ms,
        date(&attempt.at)
    )
}

fn print_subscription(s: &WebhookSubscription) {
    println!("webhook {} of {}", s.id, s.namespace);
    if let Some(model) = &s.model {
        println!("model:   {model}");
    }
    println!("url:     {}", s.url);
    println!("events:  {}", events_text(&s.events));
    println!("state:   {}", state(s));
    println!("created: {} by {}", date(&s.created_at), s.created_by);
}

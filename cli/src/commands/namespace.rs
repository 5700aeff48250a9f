//! `kiln namespace ...` and `kiln visibility`.

use kiln_core::api::{
    CreateNamespaceRequest, Member, ModelDetail, NamespaceSettings, NamespaceSummary, Role,
    SetMemberRequest, SetVisibilityRequest, Visibility,
};
use kiln_core::{ModelRef, NamespaceName};

use super::browse::print_json;
use crate::client::ApiClient;
use crate::error::CliError;

pub async fn create(client: &ApiClient, name: NamespaceName, json: bool) -> Result<(), CliError> {
    let created: NamespaceSummary = client
        .post_json("/namespaces", &CreateNamespaceRequest { name })
        .await?;
    if json {
        print_json(&created);
        return Ok(());
    }
    println!("created namespace {}", created.name);
    Ok(())
}

pub async fn list(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let namespaces: Vec<NamespaceSummary> = client.get_all("/namespaces").await?;
    if json {
        print_json(&namespaces);
        return Ok(());
    }
    for ns in &namespaces {
        println!("{:<32} {} model(s)", ns.name, ns.model_count);
    }
    Ok(())
}

pub async fn members(
    client: &ApiClient,
    namespace: NamespaceName,
    json: bool,
) -> Result<(), CliError> {
    let members: Vec<Member> = client
        .get_all(&format!("/namespaces/{namespace}/members"))
        .await?;
    if json {
        print_json(&members);
        return Ok(());
    }
    for m in &members {
        println!("{:<32} {}", m.name, m.role.as_str());
    }
    Ok(())
}

pub fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("unknown role {text:?}: use reader, writer or admin"))
}

pub async fn add_member(
    client: &ApiClient,
    namespace: NamespaceName,
    user: String,
    role: Role,
    json: bool,
) -> Result<(), CliError> {
    let member: Member = client
        .put_json(
            &format!("/namespaces/{namespace}/members/{user}"),
            &SetMemberRequest { role },
        )
        .await?;
    if json {
        print_json(&member);
        return Ok(());
    }
    println!(
        "{} is now {} of {namespace}",
        member.name,
        member.role.as_str()
    );
    Ok(())
}

pub async fn remove_member(
    client: &ApiClient,
    namespace: NamespaceName,
    user: String,
    json: bool,
) -> Result<(), CliError> {
    client
        .delete(&format!("/namespaces/{namespace}/members/{user}"))
        .await?;
    if json {
        print_json(&serde_json::json!({ "namespace": namespace, "removed": user }));
    } else {
        println!("removed {user} from {namespace}");
    }
    Ok(())
}

pub fn parse_visibility(text: &str) -> Result<Visibility, String> {
    Visibility::parse(text)
        .ok_or_else(|| format!("unknown visibility {text:?}: use public or private"))
}

pub async fn set_visibility(
    client: &ApiClient,
    reference: ModelRef,
    visibility: Visibility,
    json: bool,
) -> Result<(), CliError> {
    let Some(model) = &reference.model else {
        return Err(CliError::Usage(format!(
            "visibility needs NAMESPACE/MODEL (got {reference})"
        )));
    };
    let detail: ModelDetail = client
        .put_json(
            &format!("/models/{}/{model}/visibility", reference.namespace),
            &SetVisibilityRequest { visibility },
        )
        .await?;
    if json {
        print_json(&detail);
        return Ok(());
    }
    println!(
        "{}/{} is now {}",
        detail.namespace,
        detail.name,
        detail.visibility.as_str()
    );
    Ok(())
}

/// `kiln namespace settings NS [--store-unsafe-pickles true|false]`.
pub async fn settings(
    client: &ApiClient,
    namespace: NamespaceName,
    store_unsafe_pickles: Option<bool>,
    json: bool,
) -> Result<(), CliError> {
    let path = format!("/namespaces/{namespace}/settings");
    let settings: NamespaceSettings = match store_unsafe_pickles {
        None => client.get_json(&path).await?,
        Some(on) => {
            client
                .put_json(
                    &path,
                    &NamespaceSettings {
                        store_unsafe_pickles: on,
                    },
                )
                .await?
        }
    };
    if json {
        print_json(&settings);
        return Ok(());
    }
    let pickles = if settings.store_unsafe_pickles {
        "stored only, flagged and never loaded"
    } else {
        "refused (the default)"
    };
    println!("{namespace}: pickles the scan refuses are {pickles}");
    Ok(())
}

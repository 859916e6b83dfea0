//! `GET /v1/whoami`: the caller's token name, roles and namespaces, so a client (the console)
//! can hide what the token may not do. The server still checks every request.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::auth::Role;
use super::error::ApiError;
use super::extract::Authed;
use super::state::ApiState;

/// The answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The token's name (never the token).
    name: String,
    /// Every role the token has, implied ones included (`admin` implies `submit` and `read`).
    #[schema(inline, value_type = Vec<Role>)]
    roles: Vec<String>,
    /// The served namespaces the token may access, sorted.
    namespaces: Vec<String>,
    /// Whether the token is for every namespace (`"*"`), present and future.
    all_namespaces: bool,
    /// Whether authentication is off (everyone is admin).
    auth_disabled: bool,
}

/// `GET /v1/whoami`: any valid token.
#[utoipa::path(
    get, path = "/v1/whoami", tag = "operations", operation_id = "whoami",
    summary = "The token's name, roles and namespaces (clients hide what it may not do; the server still checks)",
    description = "Any valid token.",
    responses((status = 200, description = "The caller.", body = Identity))
)]
pub async fn show(
    State(state): State<ApiState>,
    Authed(caller): Authed,
) -> Result<Json<Identity>, ApiError> {
    let roles = [Role::Read, Role::Submit, Role::Admin]
        .into_iter()
        .filter(|r| caller.has(*r))
        .map(|r| r.to_string())
        .collect();
    let mut namespaces: Vec<String> = state
        .catalog
        .namespace_names()
        .filter(|ns| caller.may_access(ns))
        .map(str::to_owned)
        .collect();
    namespaces.sort();
    Ok(Json(Identity {
        name: caller.name.clone(),
        roles,
        namespaces,
        all_namespaces: caller.namespaces().is_none(),
        auth_disabled: state.auth.disabled(),
    }))
}

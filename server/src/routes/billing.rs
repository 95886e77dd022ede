//! Plans, subscriptions and usage: `GET /plans`, `GET/PUT /orgs/{org_id}/subscription`,
//! `GET /orgs/{org_id}/usage`. Quotas are enforced where resources are created (402
//! `quota_exceeded`); these routes only show and switch plans.

use axum::extract::State;
use chrono::{DateTime, Utc};
use nox_persistence::iam::billing::{self, Plan, Resource, Subscription};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::{self, AuthUser};
use crate::auth::Permission;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::error::{ApiResult, FieldError};
use crate::extract::{Json, Path};
use crate::http_caller::ClientInfo;
use crate::pagination::Page;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    pub id: String,
    pub name: String,
    /// `max_projects`, `max_workspaces`, `max_members`, `max_blocks_per_workspace`,
    /// `max_connections`; null is unlimited.
    #[schema(value_type = Object)]
    pub quotas: serde_json::Value,
}

impl From<&Plan> for PlanView {
    fn from(p: &Plan) -> Self {
        PlanView {
            id: p.id.to_string(),
            name: p.name.to_string(),
            quotas: serde_json::to_value(p.quotas).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub org_id: Uuid,
    pub plan_id: String,
    pub status: String,
    /// The organization's current limits (copied from the plan; null or absent is unlimited).
    #[schema(value_type = Object)]
    pub quotas: serde_json::Value,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl From<Subscription> for SubscriptionView {
    fn from(s: Subscription) -> Self {
        SubscriptionView {
            org_id: s.org_id,
            plan_id: s.plan_id,
            status: s.status,
            quotas: s.quotas,
            current_period_start: s.current_period_start,
            current_period_end: s.current_period_end,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageItem {
    /// `projects`, `workspaces` or `members`.
    pub metric: String,
    pub used: i64,
    /// The quota; null is unlimited.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    pub plan_id: String,
    pub items: Vec<UsageItem>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePlanRequest {
    /// An id from `GET /plans`.
    pub plan_id: String,
}

/// The plan catalogue.
#[utoipa::path(get, path = "/api/v1/plans", tag = "billing",
    responses((status = 200, body = Page<PlanView>)),
    security(("bearer" = [])))]
pub async fn plans(_user: AuthUser) -> Json<Page<PlanView>> {
    Json(Page::whole(
        billing::PLANS.iter().map(PlanView::from).collect(),
    ))
}

/// The organization's subscription and quotas (`org:admin`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/subscription", tag = "billing",
    params(("org_id" = Uuid, Path)),
    responses((status = 200, body = SubscriptionView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_subscription(
    State(state): State<AppState>,
    user: AuthUser,
    Path(org_id): Path<Uuid>,
) -> ApiResult<Json<SubscriptionView>> {
    access::org_permission(&state.db, user, org_id, Permission::OrgAdmin).await?;
    Ok(Json(
        billing::get_subscription(state.db.pool(), org_id)
            .await?
            .into(),
    ))
}

/// Switches the organization's plan (`org:admin`); refused with 409 `usage_exceeds_plan` when
/// current usage is above the new plan's quotas.
#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/subscription", tag = "billing",
    params(("org_id" = Uuid, Path)), request_body = ChangePlanRequest,
    responses((status = 200, body = SubscriptionView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn change_plan(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(org_id): Path<Uuid>,
    Json(body): Json<ChangePlanRequest>,
) -> ApiResult<Json<SubscriptionView>> {
    access::org_permission(&state.db, user, org_id, Permission::OrgAdmin).await?;
    let plan = billing::find_plan(body.plan_id.trim()).ok_or_else(|| {
        let ids: Vec<&str> = billing::PLANS.iter().map(|p| p.id).collect();
        ApiError::validation(vec![FieldError::new(
            "plan_id",
            format!("must be one of {}", ids.join(", ")),
        )])
    })?;
    let sub = billing::change_plan(state.db.pool(), org_id, plan, &client.actor(&user)).await?;
    Ok(Json(sub.into()))
}

/// Current usage against the quotas (`org:admin`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/usage", tag = "billing",
    params(("org_id" = Uuid, Path)),
    responses((status = 200, body = UsageView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn usage(
    State(state): State<AppState>,
    user: AuthUser,
    Path(org_id): Path<Uuid>,
) -> ApiResult<Json<UsageView>> {
    access::org_permission(&state.db, user, org_id, Permission::OrgAdmin).await?;
    let sub = billing::get_subscription(state.db.pool(), org_id).await?;
    let metrics = billing::usage(state.db.pool(), org_id).await?;
    let items = Resource::ALL
        .into_iter()
        .map(|r| UsageItem {
            metric: r.metric().to_string(),
            used: metrics
                .iter()
                .find(|m| m.metric_type == r.metric())
                .map_or(0, |m| m.current_value),
            limit: sub.quotas.get(r.quota_key()).and_then(|v| v.as_i64()),
        })
        .collect();
    Ok(Json(UsageView {
        plan_id: sub.plan_id,
        items,
    }))
}

//! The schemas and parameters of `/openapi.json`: what the handlers accept and answer,
//! as types that derive [`utoipa::ToSchema`] (and [`utoipa::IntoParams`]).
//!
//! The handlers build their documents as `serde_json::Value`; these types are never
//! constructed and only describe those documents. Each names the function that builds or
//! checks what it describes, so a change there shows where the description must follow;
//! the integration test `tests/it/openapi.rs` checks live answers against them. Limits and
//! enums come from the constants and the catalog the handlers use, not copies. It runs
//! past 500 lines because it is one flat list of descriptions, one per document, that
//! reads best side by side; none of it runs.

// Description-only types: never constructed, their fields never read.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, SchemaType, Type};
use utoipa::openapi::{Object, Ref, RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use actors::delivery::{RetryPolicy, MAX_CUSTOM_HEADERS};

use super::validate::{
    FORMATS, HTTP_VERBS, MAX_NAME_CHARS, MAX_SHA256_KEY_CHARS, MAX_URI_CHARS, VERSIONS,
};
use crate::catalog;

/// The pattern of account and webhook ids.
const ID_PATTERN: &str = "^[0-9a-f]{32}$";

fn string_enum(values: impl IntoIterator<Item = impl Into<Value>>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
}

/// A 32-lowercase-hex id.
pub(crate) fn id_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(ID_PATTERN))
        .build()
}

fn name_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_NAME_CHARS))
        .description(Some("Text without control characters."))
        .build()
}

/// `hook`: `all` or one of the catalog's hooks (`validate::Validator::webhook`).
fn hook_schema() -> Object {
    let mut values = vec!["all"];
    values.extend(catalog::hook_ids().iter().copied());
    values.sort_unstable();
    string_enum(values)
        .description(Some(
            "The event type the webhook receives; `all` matches every event.",
        ))
        .build()
}

/// `hook_event` of an incoming event (`ingest::validate_event`): a delivered hook.
fn hook_event_schema() -> Object {
    string_enum(catalog::hook_ids().iter().copied()).build()
}

fn retries_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(RetryPolicy::MAX_RETRIES))
        .default(Some(RetryPolicy::DEFAULT_RETRIES.into()))
        .description(Some("Retries after the first try. Integer text (`\"3\"`) is accepted and stored as a number."))
        .build()
}

fn string_map(max: Option<usize>, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
        .max_properties(max)
        .description(Some(description))
        .build()
}

fn custom_data_schema() -> Object {
    string_map(
        None,
        "String values only. The `object` hook requires `type` and `action`, `notifications` requires `type`.",
    )
}

fn custom_request_headers_schema() -> Object {
    string_map(
        Some(MAX_CUSTOM_HEADERS),
        "Header name (an HTTP token the daemon does not set itself) to value, sent on every try.",
    )
}

fn sha256_key_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(MAX_SHA256_KEY_CHARS))
        .build()
}

fn uri_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(MAX_URI_CHARS))
        .description(Some(
            "An http or https URL; private, loopback and link-local targets are refused unless --allow-private-targets.",
        ))
        .build()
}

/// A Gregorian-seconds timestamp (Unix seconds + 62167219200).
fn gregorian_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .description(Some("Gregorian seconds (Unix seconds + 62167219200)."))
        .build()
}

/// The Crossbar answer (`envelope::complete_envelope`) with its `data`.
#[derive(ToSchema)]
pub(crate) struct Envelope<T> {
    pub(crate) data: T,
    #[schema(schema_with = success_status)]
    pub(crate) status: String,
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub(crate) request_id: String,
    /// A content hash of `data`.
    pub(crate) revision: String,
    /// When the answer was made (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub(crate) timestamp: String,
    pub(crate) node: String,
    pub(crate) version: String,
    /// The caller's `X-Auth-Token` (empty without one); on `PUT /v2/api_auth` the new token.
    pub(crate) auth_token: String,
}

/// A listing answer: [`Envelope`] with an array `data` and the paging fields
/// (`envelope::Reply::paged`).
#[derive(ToSchema)]
pub(crate) struct Page<T> {
    pub(crate) data: Vec<T>,
    #[schema(schema_with = success_status)]
    pub(crate) status: String,
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub(crate) request_id: String,
    pub(crate) revision: String,
    #[schema(format = DateTime)]
    pub(crate) timestamp: String,
    pub(crate) node: String,
    pub(crate) version: String,
    pub(crate) auth_token: String,
    /// How many items this page holds.
    #[schema(minimum = 0)]
    pub(crate) page_size: u64,
    /// The sort key of the first item on this page (absent when the page is empty).
    #[schema(nullable = false)]
    pub(crate) start_key: Option<String>,
    /// The `start_key` of the next page; absent on the last page.
    #[schema(nullable = false)]
    pub(crate) next_start_key: Option<String>,
}

fn success_status() -> Object {
    string_enum(["success"]).build()
}

fn error_status() -> Object {
    string_enum(["error"]).build()
}

/// The Crossbar error answer (`error::ApiError`).
#[derive(ToSchema)]
pub(crate) struct ErrorEnvelope {
    pub(crate) data: ErrorData,
    #[schema(schema_with = error_status)]
    pub(crate) status: String,
    /// The HTTP status code, as text (`"404"`).
    #[schema(pattern = "^[1-5][0-9]{2}$")]
    pub(crate) error: String,
    /// `validation error`, `bad_identifier`, `invalid_credentials`, `forbidden`,
    /// `not_found`, `method_not_allowed`, `datastore_conflict`, `limit reached`, ...
    pub(crate) message: String,
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub(crate) request_id: String,
    pub(crate) revision: String,
    #[schema(format = DateTime)]
    pub(crate) timestamp: String,
    pub(crate) node: String,
    pub(crate) version: String,
    pub(crate) auth_token: String,
}

/// An error's details. For a validation error (400, `"message": "validation error"`) the
/// keys are field paths (`uri`, `custom_data.type`, `0.hook_event` in an event batch),
/// each mapping the failed rule (`required`, `enum`, `type`, `minimum`, `maximum`,
/// `wrong_format`, ...) to `{message, target?, value?, cause?}`. Other errors carry
/// `message`, and some `cause` (the id or path at fault) or `limit` and `value`.
#[derive(ToSchema)]
pub(crate) struct ErrorData {
    #[schema(nullable = false)]
    pub(crate) message: Option<String>,
    #[schema(value_type = Value, required = false)]
    pub(crate) cause: Option<Value>,
    /// The flag that sets the limit reached.
    #[schema(nullable = false)]
    pub(crate) limit: Option<String>,
    #[schema(value_type = Value, required = false)]
    pub(crate) value: Option<Value>,
}

/// `{"data": ...}`, the Crossbar request body. It is parsed as JSON whatever the
/// `Content-Type` says.
#[derive(ToSchema)]
pub(crate) struct Request<T> {
    pub(crate) data: T,
}

/// An account as answered (`accounts::account_out`): the stored document (`name` and any
/// other field the client set) with `id` and `parent_id`.
#[derive(ToSchema)]
pub(crate) struct Account {
    #[schema(schema_with = id_schema)]
    pub(crate) id: String,
    #[schema(schema_with = name_schema)]
    pub(crate) name: String,
    /// Absent on the master account.
    #[schema(schema_with = id_schema, nullable = false)]
    pub(crate) parent_id: Option<String>,
    /// `{"deleted": true}` in the answer to `DELETE`.
    #[schema(nullable = false)]
    pub(crate) _read_only: Option<Deleted>,
}

/// An account document to store (`accounts::validate_account`): `name` is required;
/// other fields are stored as given, except `id`, `parent_id` and private (`pvt_`, `_`)
/// fields, which are dropped.
#[derive(ToSchema)]
pub(crate) struct AccountInput {
    #[schema(schema_with = name_schema)]
    pub(crate) name: String,
}

/// A merge into the account document: `null` removes a field; the result must still
/// have a `name`.
#[derive(ToSchema)]
pub(crate) struct AccountPatch {
    #[schema(schema_with = name_schema, nullable = false)]
    pub(crate) name: Option<String>,
}

/// The account listing item (`accounts::list_accounts`); filters see the full document.
#[derive(ToSchema)]
pub(crate) struct AccountSummary {
    #[schema(schema_with = id_schema)]
    pub(crate) id: String,
    pub(crate) name: String,
}

#[derive(ToSchema)]
pub(crate) struct Deleted {
    pub(crate) deleted: bool,
}

/// `PUT /v2/api_auth`'s body.
#[derive(ToSchema)]
pub(crate) struct ApiKey {
    #[schema(min_length = 1)]
    pub(crate) api_key: String,
}

/// A new token's account (`auth::create_token`); the token is the envelope's
/// `auth_token`.
#[derive(ToSchema)]
pub(crate) struct TokenIssued {
    #[schema(schema_with = id_schema)]
    pub(crate) account_id: String,
    pub(crate) account_name: String,
    #[schema(schema_with = gregorian_schema)]
    pub(crate) expires_at: u64,
}

/// A webhook document as stored and answered (`webhooks::webhook_out`, after
/// `validate::Validator::webhook` filled the defaults). Fields the client set beyond
/// these are kept.
#[derive(ToSchema)]
pub(crate) struct Webhook {
    #[schema(schema_with = id_schema)]
    pub(crate) id: String,
    #[schema(schema_with = name_schema)]
    pub(crate) name: String,
    #[schema(schema_with = uri_schema)]
    pub(crate) uri: String,
    #[schema(schema_with = hook_schema)]
    pub(crate) hook: String,
    #[schema(schema_with = http_verb_schema)]
    pub(crate) http_verb: String,
    #[schema(schema_with = format_schema)]
    pub(crate) format: String,
    #[schema(schema_with = retries_schema)]
    pub(crate) retries: u32,
    pub(crate) enabled: bool,
    pub(crate) include_internal_legs: bool,
    /// Also receive the events of descendant accounts.
    #[schema(nullable = false)]
    pub(crate) include_subaccounts: Option<bool>,
    #[schema(schema_with = version_schema)]
    pub(crate) version: String,
    #[schema(schema_with = custom_data_schema, nullable = false)]
    pub(crate) custom_data: Option<Value>,
    #[schema(value_type = Object, required = false)]
    pub(crate) modifiers: Option<Value>,
    #[schema(schema_with = custom_request_headers_schema, nullable = false)]
    pub(crate) custom_request_headers: Option<Value>,
    #[schema(nullable = false)]
    pub(crate) security_settings: Option<SecuritySettings>,
    /// Why the webhook was disabled automatically (absent otherwise).
    #[schema(nullable = false)]
    pub(crate) disable_reason: Option<String>,
    /// `{"deleted": true}` in the answer to `DELETE`.
    #[schema(nullable = false)]
    pub(crate) _read_only: Option<Deleted>,
}

/// A webhook document to validate and store (`validate::Validator::webhook`). Defaults
/// fill what is missing (on `POST`, `enabled` keeps its stored value). `"true"`/`"false"`
/// are accepted for booleans and integer text for `retries`; `id`, `disable_reason` and
/// private (`pvt_`, `_`) fields are dropped, except that `PUT` (create) takes a free
/// 32-hex `id` (409 if any account ever used it).
#[derive(ToSchema)]
pub(crate) struct WebhookInput {
    #[schema(schema_with = id_schema, nullable = false)]
    pub(crate) id: Option<String>,
    #[schema(schema_with = name_schema)]
    pub(crate) name: String,
    #[schema(schema_with = uri_schema)]
    pub(crate) uri: String,
    #[schema(schema_with = hook_schema)]
    pub(crate) hook: String,
    #[schema(schema_with = http_verb_schema, nullable = false)]
    pub(crate) http_verb: Option<String>,
    #[schema(schema_with = format_schema, nullable = false)]
    pub(crate) format: Option<String>,
    #[schema(schema_with = retries_schema, nullable = false)]
    pub(crate) retries: Option<u32>,
    #[schema(default = true, nullable = false)]
    pub(crate) enabled: Option<bool>,
    #[schema(default = true, nullable = false)]
    pub(crate) include_internal_legs: Option<bool>,
    #[schema(nullable = false)]
    pub(crate) include_subaccounts: Option<bool>,
    #[schema(schema_with = version_schema, nullable = false)]
    pub(crate) version: Option<String>,
    #[schema(schema_with = custom_data_schema, nullable = false)]
    pub(crate) custom_data: Option<Value>,
    #[schema(value_type = Object, required = false)]
    pub(crate) modifiers: Option<Value>,
    #[schema(schema_with = custom_request_headers_schema, nullable = false)]
    pub(crate) custom_request_headers: Option<Value>,
    #[schema(nullable = false)]
    pub(crate) security_settings: Option<SecuritySettings>,
}

/// A merge into the webhook document (Crossbar's PATCH): any field of the document;
/// `null` removes one. The merged document is validated like a `POST`.
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub(crate) struct WebhookPatch(Value);

fn http_verb_schema() -> Object {
    string_enum(HTTP_VERBS.iter().copied())
        .default(Some("post".into()))
        .build()
}

/// How the payload is encoded: form fields or a JSON body (`get` sends a query string).
fn format_schema() -> Object {
    string_enum(FORMATS.iter().copied())
        .default(Some("form-data".into()))
        .build()
}

/// `v1`: the flat payload; `v2`: `{action, name, data, timestamp}` (Kazoo 5).
fn version_schema() -> Object {
    string_enum(VERSIONS.iter().copied())
        .default(Some("v1".into()))
        .description(Some(
            "`v1`: the flat payload; `v2`: `{action, name, data, timestamp}` (Kazoo 5).",
        ))
        .build()
}

/// Kazoo 5's `security_settings`: `sha256_key` signs v2 bodies (`hmac`).
#[derive(ToSchema)]
pub(crate) struct SecuritySettings {
    #[schema(schema_with = sha256_key_schema, nullable = false)]
    pub(crate) sha256_key: Option<String>,
}

/// The summary listing item (`webhooks::webhook_summary`).
#[derive(ToSchema)]
pub(crate) struct WebhookSummary {
    #[schema(schema_with = id_schema)]
    pub(crate) id: String,
    pub(crate) hook: String,
    #[schema(value_type = Value)]
    pub(crate) name: Value,
    #[schema(value_type = Value)]
    pub(crate) uri: Value,
    pub(crate) enabled: bool,
    #[schema(nullable = false)]
    pub(crate) disable_reason: Option<String>,
}

/// The bulk re-enable body: `re-enable` must be `true` (or `"true"`).
#[derive(ToSchema)]
pub(crate) struct Reenable {
    #[schema(rename = "re-enable", schema_with = reenable_schema)]
    pub(crate) reenable: bool,
}

fn reenable_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Boolean, Type::String]))
        .enum_values(Some([Value::Bool(true), Value::from("true")]))
        .build()
}

/// One delivery try (`attempts::attempt_item`).
#[derive(ToSchema)]
pub(crate) struct Attempt {
    /// The attempt's id (its log sequence, 20 digits): what `…/attempts/{attempt_id}/resend`
    /// takes.
    #[schema(pattern = "^[0-9]{20}$")]
    pub(crate) id: String,
    #[schema(schema_with = id_schema)]
    pub(crate) hook_id: String,
    pub(crate) event_id: String,
    pub(crate) hook_event: String,
    pub(crate) uri: String,
    /// The HTTP method used (`get`, `post`, `put`).
    pub(crate) method: String,
    #[schema(schema_with = attempt_result_schema)]
    pub(crate) result: String,
    #[schema(minimum = 0)]
    pub(crate) retries_left: u32,
    #[schema(minimum = 0)]
    pub(crate) latency_ms: u64,
    #[schema(schema_with = gregorian_schema)]
    pub(crate) timestamp: u64,
    /// Why the try failed, when it did.
    #[schema(nullable = false)]
    pub(crate) reason: Option<String>,
    #[schema(nullable = false)]
    pub(crate) client_error: Option<String>,
    #[schema(nullable = false)]
    pub(crate) response_code: Option<u16>,
    #[schema(nullable = false)]
    pub(crate) response_body: Option<String>,
}

fn attempt_result_schema() -> Object {
    string_enum(["success", "failure"]).build()
}

/// A hook one can subscribe to (`catalog::available_hooks`).
#[derive(ToSchema)]
pub(crate) struct AvailableHook {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    /// The hook's `custom_data` selections, for `object` and `notifications`.
    #[schema(value_type = Object, required = false)]
    pub(crate) modifiers: Option<Value>,
}

/// A call event to deliver (`ingest::validate_event`): these fields are checked; every
/// other field is the payload, delivered as given.
#[derive(ToSchema)]
pub(crate) struct Event {
    #[schema(schema_with = hook_event_schema)]
    pub(crate) hook_event: String,
    #[schema(schema_with = id_schema)]
    pub(crate) account_id: String,
    /// The producer's id, for de-duplication of retries (generated when absent).
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$", nullable = false)]
    pub(crate) event_id: Option<String>,
}

/// `POST /v2/events`' `data`: one event, or a batch of at least one validated whole.
pub(crate) struct EventBatch;

impl PartialSchema for EventBatch {
    fn schema() -> RefOr<Schema> {
        let event = || Ref::from_schema_name(Event::name());
        OneOfBuilder::new()
            .item(event())
            .item(ArrayBuilder::new().items(event()).min_items(Some(1)))
            .description(Some(
                "One event, or a batch of at least one validated whole.",
            ))
            .into()
    }
}

impl ToSchema for EventBatch {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Event::name().into_owned(), Event::schema()));
    }
}

/// `POST /v2/events`' answer: how many events were accepted.
#[derive(ToSchema)]
pub(crate) struct Accepted {
    #[schema(minimum = 1)]
    pub(crate) accepted: u64,
}

/// `PUT …/attempts/{attempt_id}/resend`'s answer (`redelivery::resend_attempt`).
#[derive(ToSchema)]
pub(crate) struct Resent {
    #[schema(pattern = "^[0-9]{20}$")]
    pub(crate) attempt_id: String,
    pub(crate) event_id: String,
    /// Always 1.
    #[schema(minimum = 1, maximum = 1)]
    pub(crate) events: u64,
}

/// `PUT …/recover`'s body (`redelivery::window`): RFC 3339 or Unix seconds (a number or
/// a string of digits); `until` defaults to now and must not be before `since`.
#[derive(ToSchema)]
pub(crate) struct RecoverWindow {
    #[schema(schema_with = instant_schema)]
    pub(crate) since: Value,
    #[schema(schema_with = instant_schema, nullable = false)]
    pub(crate) until: Option<Value>,
}

fn instant_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Integer]))
        .description(Some("RFC 3339 (`2026-12-03T17:00:00Z`) or Unix seconds"))
        .build()
}

/// `PUT …/recover`'s answer: how many events it queued.
#[derive(ToSchema)]
pub(crate) struct Recovered {
    #[schema(minimum = 0)]
    pub(crate) events: u64,
}

/// `GET …/api_key`.
#[derive(ToSchema)]
pub(crate) struct AccountApiKey {
    pub(crate) api_key: String,
}

/// A webhook's signing secret (`webhook_secret`): `whsec_` + standard base64 of 24 to
/// 64 bytes.
#[derive(ToSchema)]
pub(crate) struct WebhookSecret {
    #[schema(pattern = "^whsec_")]
    pub(crate) key: String,
}

/// `PUT …/secret`'s body: `{}` rotates to a new random secret; `key` sets that one.
#[derive(ToSchema)]
pub(crate) struct WebhookSecretInput {
    #[schema(pattern = "^whsec_", nullable = false)]
    pub(crate) key: Option<String>,
}

/// `GET /healthz` (`health::healthz`), 200 or 503 alike.
#[derive(ToSchema)]
pub(crate) struct Health {
    #[schema(schema_with = health_status_schema)]
    pub(crate) status: String,
    pub(crate) log: LogState,
    #[schema(minimum = 0)]
    pub(crate) last_seq: u64,
    #[schema(minimum = 0)]
    pub(crate) pending_deliveries: u64,
    #[schema(minimum = 0)]
    pub(crate) events_accepted: u64,
    #[schema(minimum = 0)]
    pub(crate) last_snapshot_seq: u64,
    pub(crate) start: StartFigures,
}

fn health_status_schema() -> Object {
    string_enum(["ok", "unavailable"]).build()
}

/// Whether the event log takes writes, and if not why and since when (RFC 3339).
#[derive(ToSchema)]
pub(crate) struct LogState {
    pub(crate) writable: bool,
    #[schema(nullable = false)]
    pub(crate) reason: Option<String>,
    #[schema(format = DateTime, nullable = false)]
    pub(crate) since: Option<String>,
}

/// How the last start went: the snapshot it began from and the records replayed.
#[derive(ToSchema)]
pub(crate) struct StartFigures {
    /// The snapshot's sequence (0: none).
    #[schema(minimum = 0)]
    pub(crate) snapshot_seq: u64,
    #[schema(minimum = 0)]
    pub(crate) replayed_records: u64,
}

/// A sample payload: a delivered event's fields (they vary by hook).
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub(crate) struct Sample(Value);

/// The paging and filter parameters of a listing (`listing::ListQuery`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Items per page (default 50; anything but a positive integer means 50).
    #[param(minimum = 1, nullable = false)]
    page_size: Option<u64>,
    /// Start at the item with this key (a page's `start_key` or `next_start_key`).
    #[param(nullable = false)]
    start_key: Option<String>,
    /// `false` returns every item in one page.
    #[param(nullable = false)]
    paginate: Option<bool>,
    /// Ascending key order (each listing says its default order).
    #[param(nullable = false)]
    ascending: Option<bool>,
    /// The opposite of `ascending`.
    #[param(nullable = false)]
    descending: Option<bool>,
    /// Only items that have this (dotted) key.
    #[param(nullable = false)]
    has_key: Option<String>,
    /// Only items that lack this (dotted) key.
    #[param(nullable = false)]
    key_missing: Option<String>,
    /// `filter_KEY=VALUE` (the value at dotted path KEY equals VALUE) and
    /// `filter_not_KEY=VALUE`, each its own query parameter; all must hold.
    #[param(style = Form, explode, nullable = false)]
    filters: Option<BTreeMap<String, String>>,
}

/// `{account_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct AccountPath {
    /// An account id (32 lowercase hex characters).
    account_id: String,
}

/// `{account_id}` and `{webhook_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct WebhookPath {
    /// The webhook's account (32 lowercase hex characters).
    account_id: String,
    /// A webhook of that account (32 lowercase hex characters).
    webhook_id: String,
}

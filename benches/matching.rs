//! Matching and request building: the per-event CPU work before any I/O.
//!
//! - `matching/tree_10k/leaf_account`: a registry of 10,000 hooks (a master, 10
//!   resellers under it and 9 accounts under each, 100 hooks in each of these 100
//!   accounts, built by applying records as replay does, with a mix of hook kinds,
//!   verbs, modifiers, `include_subaccounts`, `include_internal_legs` and disabled
//!   hooks), and one `channel_create` of a leaf account: its own 100 hooks and its
//!   reseller's 100 are candidates.
//! - `matching/tree_100k/leaf_account`: the same with 99 accounts under each reseller:
//!   100,000 hooks, the same 200 candidates.
//! - `matching/one_account_10k/mixed`: the registry-wide worst case, one account holding
//!   all 10,000 hooks (the same mix).
//! - `matching/one_account_10k/all_match`: 10,000 hooks that all match (every id is
//!   cloned into the result).
//! - `encode/form_encode/channel_destroy`: `form_encode` of a 28-key `channel_destroy`
//!   payload with nested `custom_channel_vars`.
//! - `encode/build_request/{json,form,get}`: the whole request for that payload.
//! - `encode/sign/{one_secret,rotation_overlap}`: the Standard Webhooks signature headers
//!   of one try over that payload's form body, with one secret and during a rotation's
//!   overlap (two signatures).
//!
//! Run: `cargo bench --bench matching`.

use std::hint::black_box;
use std::time::Duration;

use actors::delivery::{build_payload, build_request, BodyFormat, HttpVerb};
use actors::form::form_encode;
use actors::signing::{generate_secret, SigningKeys, WebhookSecrets};
use actors::Registry;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use eventlog::AccountId;

#[allow(dead_code)]
mod support;

use support::{
    channel_create_payload, channel_destroy_payload, matching_hook_doc, mixed_hook_doc,
    RegistryBuilder,
};

const URI: &str = "http://receiver.example.net:8080/kazoo/hooks?source=piston";

/// Master, 10 resellers, `accounts_per_reseller` accounts under each; 100 hooks in each
/// account below the master. Returns the registry and one leaf account.
fn tree_registry(accounts_per_reseller: usize) -> (Registry, AccountId) {
    let mut b = RegistryBuilder::new();
    let master = b.account(None, "Master Account");
    let mut leaf = None;
    for r in 0..10 {
        let reseller = b.account(Some(&master), &format!("reseller {r}"));
        for slot in 0..100 {
            b.webhook(&reseller, mixed_hook_doc(slot, URI));
        }
        for a in 0..accounts_per_reseller {
            let account = b.account(Some(&reseller), &format!("account {r}.{a}"));
            for slot in 0..100 {
                b.webhook(&account, mixed_hook_doc(slot, URI));
            }
            leaf = Some(account);
        }
    }
    let registry = b.finish();
    assert_eq!(
        registry.webhooks().count(),
        10 * (1 + accounts_per_reseller) * 100
    );
    (registry, leaf.expect("a leaf account"))
}

/// Master and one account holding 10,000 hooks built by `doc`.
fn one_account_registry(doc: fn(u32, &str) -> serde_json::Value) -> (Registry, AccountId) {
    let mut b = RegistryBuilder::new();
    let master = b.account(None, "Master Account");
    let account = b.account(Some(&master), "big account");
    for slot in 0..10_000 {
        b.webhook(&account, doc(slot, URI));
    }
    (b.finish(), account)
}

fn bench_matching(c: &mut Criterion) {
    let mut group = c.benchmark_group("matching");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));

    for (name, accounts_per_reseller) in [("tree_10k", 9), ("tree_100k", 99)] {
        let (registry, leaf) = tree_registry(accounts_per_reseller);
        let payload = channel_create_payload(&leaf, 1);
        let matched = registry
            .matching_hooks(&leaf, "channel_create", &payload)
            .len();
        eprintln!("matching/{name}/leaf_account: {matched} hooks match");
        group.bench_function(format!("{name}/leaf_account"), |b| {
            b.iter(|| registry.matching_hooks(black_box(&leaf), "channel_create", &payload));
        });
    }

    for (name, doc) in [
        (
            "one_account_10k/mixed",
            mixed_hook_doc as fn(u32, &str) -> _,
        ),
        ("one_account_10k/all_match", matching_hook_doc),
    ] {
        let (registry, account) = one_account_registry(doc);
        let payload = channel_create_payload(&account, 1);
        let matched = registry
            .matching_hooks(&account, "channel_create", &payload)
            .len();
        eprintln!("matching/{name}: {matched} hooks match");
        group.bench_function(name, |b| {
            b.iter(|| registry.matching_hooks(black_box(&account), "channel_create", &payload));
        });
    }
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));

    let account = AccountId::generate();
    let event = channel_destroy_payload(&account, 1);
    let payload = build_payload(&event, "channel_destroy", None, "channel_destroy").to_map();
    eprintln!(
        "encode: {} top-level keys, form body {} bytes, json body {} bytes",
        payload.len(),
        form_encode(&payload).len(),
        serde_json::to_vec(&payload).map_or(0, |v| v.len()),
    );
    group.bench_function("form_encode/channel_destroy", |b| {
        b.iter(|| form_encode(black_box(&payload)));
    });
    for (name, verb, format) in [
        ("build_request/json", HttpVerb::Post, BodyFormat::Json),
        ("build_request/form", HttpVerb::Post, BodyFormat::FormData),
        ("build_request/get", HttpVerb::Get, BodyFormat::FormData),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| build_request(black_box(URI), verb, format, &payload).expect("request"));
        });
    }
    let body = form_encode(&payload);
    let overlap = Duration::from_secs(86_400);
    let mut secrets = WebhookSecrets::default();
    secrets.set(generate_secret(), 0);
    let one = SigningKeys::from_secrets(&secrets).expect("a current secret");
    secrets.set(generate_secret(), eventlog::now_ms());
    let two = SigningKeys::from_secrets(&secrets).expect("a current secret");
    for (name, keys) in [("sign/one_secret", &one), ("sign/rotation_overlap", &two)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                keys.sign(
                    black_box("0123456789abcdef0123456789abcdef"),
                    eventlog::now_ms(),
                    black_box(body.as_bytes()),
                    overlap,
                )
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_matching, bench_encode);
criterion_main!(benches);

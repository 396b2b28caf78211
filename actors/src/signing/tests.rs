//! Signature vectors computed independently (the Standard Webhooks reference vector, and
//! Python's `hmac` module for the others), rotation windows, and the secret format.

use super::*;

/// `whsec_` + base64 of the bytes 0, 1, ..., 31.
const SECRET_0_31: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// `whsec_` + base64 of 24 bytes 0xab.
const SECRET_AB_24: &str = "whsec_q6urq6urq6urq6urq6urq6urq6urq6ur";

const MS: u64 = 1_800_000_000_000;

fn keys(secret: &str) -> SigningKeys {
    SigningKeys::from_secrets(&WebhookSecrets {
        current: Some(Secret::new(secret)),
        previous: None,
        rotated_ms: None,
    })
    .expect("a usable secret")
}

fn rotated(new: &str, old: &str, at_ms: u64) -> SigningKeys {
    let mut secrets = WebhookSecrets::default();
    secrets.set(Secret::new(old), 1);
    secrets.set(Secret::new(new), at_ms);
    SigningKeys::from_secrets(&secrets).expect("usable secrets")
}

#[test]
fn the_standard_webhooks_reference_vector() {
    // From the Standard Webhooks specification's reference libraries.
    let key = HmacKey::new(&decode_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap());
    assert_eq!(
        sign_v1(
            &key,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            "1649367553",
            br#"{"email":"test@example.com","username":"test_user"}"#
        ),
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
    );
}

#[test]
fn a_try_is_signed_over_its_content_with_its_second() {
    let keys = keys(SECRET_0_31);
    let json = keys.sign(
        "ev-42",
        MS + 999,
        br#"{"call_id":"abc","hook_event":"channel_create"}"#,
        DEFAULT_ROTATION_OVERLAP,
    );
    assert_eq!(json.timestamp, "1800000000", "whole seconds, rounded down");
    assert_eq!(
        json.signatures,
        "v1,mlelL8ecCFAQK69kzE2rkNUaTBe4Ol/VOJGL2PKx3Tw="
    );
    let form = keys.sign(
        "ev-42",
        MS,
        b"call_id=abc&hook_event=channel_create",
        DEFAULT_ROTATION_OVERLAP,
    );
    assert_eq!(
        form.signatures,
        "v1,pW0NE2QaxO2goVjLFl+YbccGvFD0RdB+bPbpSocmzZc="
    );
    let empty = keys.sign("ev-42", MS, b"", DEFAULT_ROTATION_OVERLAP);
    assert_eq!(
        empty.signatures,
        "v1,t4jyjM72r3OEfQl/zM+r+cVYEswGV+yW5otH170Vp8U="
    );
}

#[test]
fn during_the_overlap_both_secrets_sign_new_first() {
    let overlap = Duration::from_secs(60);
    let keys = rotated(SECRET_0_31, SECRET_AB_24, MS - 10_000);
    let body = b"call_id=abc&hook_event=channel_create";
    let both = keys.sign("ev-42", MS, body, overlap);
    assert_eq!(
        both.signatures,
        "v1,pW0NE2QaxO2goVjLFl+YbccGvFD0RdB+bPbpSocmzZc= \
         v1,Vfevc6FDo8XCxlGfZ5Ki9Ti7Z4c+JVmyDV3gPJBglrU="
    );
}

#[test]
fn the_overlap_runs_from_the_rotation_until_its_end_excluded() {
    let overlap = Duration::from_secs(60);
    let at = MS;
    let keys = rotated(SECRET_0_31, SECRET_AB_24, at);
    assert!(keys.in_overlap(at, overlap));
    assert!(keys.in_overlap(at + 59_999, overlap));
    assert!(!keys.in_overlap(at + 60_000, overlap));
    let after = keys.sign("ev-42", at + 60_000, b"x", overlap);
    assert!(!after.signatures.contains(' '), "{}", after.signatures);
    // A zero overlap never sends the old signature.
    assert!(!keys.in_overlap(at, Duration::ZERO));
    // No rotation, no overlap.
    assert!(!self::keys(SECRET_0_31).in_overlap(at, overlap));
}

#[test]
fn setting_a_secret_keeps_the_one_it_replaces_with_the_time() {
    let mut secrets = WebhookSecrets::default();
    secrets.set(Secret::new(SECRET_0_31), 5);
    assert_eq!(secrets.previous, None, "a first secret replaces nothing");
    assert_eq!(secrets.rotated_ms, None);
    secrets.set(Secret::new(SECRET_AB_24), 7);
    assert_eq!(secrets.current, Some(Secret::new(SECRET_AB_24)));
    assert_eq!(secrets.previous, Some(Secret::new(SECRET_0_31)));
    assert_eq!(secrets.rotated_ms, Some(7));
    let shown = format!("{secrets:?}");
    assert!(!shown.contains("whsec_"), "{shown}");
}

#[test]
fn generated_secrets_are_fresh_32_byte_keys() {
    let a = generate_secret();
    let b = generate_secret();
    assert_ne!(a, b);
    assert!(a.expose().starts_with(SECRET_PREFIX));
    assert_eq!(decode_secret(a.expose()).map(|k| k.len()), Ok(32));
}

#[test]
fn secrets_must_be_prefixed_base64_of_24_to_64_bytes() {
    assert!(decode_secret(SECRET_AB_24).is_ok());
    assert_eq!(
        decode_secret("q6urq6urq6urq6urq6urq6urq6urq6ur"),
        Err(SecretError::MissingPrefix)
    );
    assert_eq!(
        decode_secret("whsec_not base64!"),
        Err(SecretError::NotBase64)
    );
    let short = format!("{SECRET_PREFIX}{}", STANDARD.encode([1u8; 23]));
    assert_eq!(decode_secret(&short), Err(SecretError::WrongLength(23)));
    let long = format!("{SECRET_PREFIX}{}", STANDARD.encode([1u8; 65]));
    assert_eq!(decode_secret(&long), Err(SecretError::WrongLength(65)));
    let longest = format!("{SECRET_PREFIX}{}", STANDARD.encode([1u8; 64]));
    assert!(decode_secret(&longest).is_ok());
}

#[test]
fn keys_print_redacted() {
    let shown = format!("{:?}", keys(SECRET_0_31));
    assert!(shown.contains("[redacted]"), "{shown}");
    assert!(!shown.contains("AAECAwQF"), "{shown}");
}

#[test]
fn no_usable_current_secret_means_no_keys() {
    assert_eq!(SigningKeys::from_secrets(&WebhookSecrets::default()), None);
    let broken = WebhookSecrets {
        current: Some(Secret::new("whsec_???")),
        previous: None,
        rotated_ms: None,
    };
    assert_eq!(SigningKeys::from_secrets(&broken), None);
}

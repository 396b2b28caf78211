use super::*;

fn plan() -> Plan {
    Plan::new(
        "t1".into(),
        vec!["0123456789abcdef0123456789abcdef".into()],
        Vec::new(),
    )
}

#[test]
fn a_single_event_goes_alone_as_the_data_object() {
    let plan = plan();
    let body: serde_json::Value =
        serde_json::from_str(&request_body(&plan, 7, 8, true)).expect("JSON");
    assert_eq!(body["data"]["event_id"], "lt-t1-7", "{body}");
    assert_eq!(body["data"]["account_id"], plan.accounts[0], "{body}");
}

#[test]
fn batches_go_as_the_data_array() {
    let plan = plan();
    let body: serde_json::Value =
        serde_json::from_str(&request_body(&plan, 3, 6, false)).expect("JSON");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    assert_eq!(ids, ["lt-t1-3", "lt-t1-4", "lt-t1-5"]);
    // The last event of a batched run goes in an array too.
    let last: serde_json::Value =
        serde_json::from_str(&request_body(&plan, 9, 10, false)).expect("JSON");
    assert!(last["data"].is_array(), "{last}");
}

#[test]
fn event_states_are_counted() {
    let state = LoadState::new(10);
    state.record_post(0, 4, PostOutcome::Accepted, 1, 2);
    state.record_post(4, 6, PostOutcome::Refused(413), 1, 2);
    state.record_post(6, 7, PostOutcome::Timeout, 1, 2);
    state.record_post(7, 8, PostOutcome::Transport, 1, 2);
    assert_eq!(state.count(ACCEPTED), 4);
    assert_eq!(state.count(REFUSED), 3);
    assert_eq!(state.count(UNCERTAIN), 1);
    assert_eq!(state.count(NOT_SENT), 2);
    assert_eq!(state.status(6), UNCERTAIN);
    assert_eq!(state.status(99), NOT_SENT);
}

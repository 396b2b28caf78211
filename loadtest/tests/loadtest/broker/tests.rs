use super::*;

#[test]
fn a_broker_that_answers_runs_the_test_under_ci_or_not() {
    assert_eq!(judge("t", Some("true"), Ok(())), Verdict::Run);
    assert_eq!(judge("t", None, Ok(())), Verdict::Run);
}

#[test]
fn a_missing_broker_fails_under_ci_with_what_to_do() {
    for ci in ["true", "TRUE", "1"] {
        let Verdict::Fail(message) = judge("amqp_test", Some(ci), Err("refused".into())) else {
            panic!("CI={ci} must fail");
        };
        assert!(message.contains("amqp_test"), "{message}");
        assert!(message.contains("127.0.0.1:5672"), "{message}");
        assert!(message.contains("refused"), "{message}");
        assert!(message.contains("rabbitmq-server"), "{message}");
    }
}

#[test]
fn a_missing_broker_outside_ci_is_a_skip_that_says_so() {
    for ci in [None, Some(""), Some("false"), Some("0")] {
        let Verdict::Skip(message) = judge("amqp_test", ci, Err("refused".into())) else {
            panic!("CI={ci:?} must skip");
        };
        assert!(message.starts_with("SKIPPED amqp_test"), "{message}");
        assert!(message.contains("did NOT run"), "{message}");
    }
}

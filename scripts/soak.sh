#!/usr/bin/env bash
# The kill -9 soak (issue 12): PISTON_SOAK_CYCLES cycles (100 unless set) of starting the
# daemon on one data dir, posting a burst and killing it (SIGKILL) mid-burst; then 0 lost
# accepted events, each delivery logged once, and no delivery made again once a kill found
# it logged. It is the `#[ignore]`d test `crash::soak_kill_9_mid_burst_loses_no_accepted_event`
# (tests/it/crash.rs); .ci/run runs it with 5 cycles.
#
#   scripts/soak.sh                        # 100 cycles
#   PISTON_SOAK_CYCLES=500 scripts/soak.sh
#
# It prints one `soak:` line with the cycles, the time taken, the events accepted, and the
# deliveries lost (must be 0) and duplicated (tries in flight at a kill, made again).
set -euo pipefail
cd "$(dirname "$0")/.."
export PISTON_SOAK_CYCLES="${PISTON_SOAK_CYCLES:-100}"
exec scripts/with-deps cargo test --locked --test it -- --ignored --exact --nocapture \
    crash::soak_kill_9_mid_burst_loses_no_accepted_event

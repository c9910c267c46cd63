#!/usr/bin/env bash
# Runs the property tests (every test named `prop_*`: SigV4 parsing and canonicalisation, the
# AWS JSON and EC2 form decoders, SSH usernames, both escape parsers, public keys, telnet,
# console URIs, ids, the config loader) in a release build, with many more cases than
# `cargo test` gives them.
#
#   scripts/fuzz.sh                          # 20000 cases per property, whole workspace
#   PROPTEST_CASES=200000 scripts/fuzz.sh    # longer
#   scripts/fuzz.sh -p sigv4 -p api          # some crates only (arguments go to cargo test)
#
# A failure prints the minimal failing input. For the tests inside a crate (src/**/prop_tests.rs)
# proptest also records its seed under that crate's proptest-regressions/, so later runs try it
# first; commit that file with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."

export PROPTEST_CASES="${PROPTEST_CASES:-20000}"
if [ "$#" -eq 0 ]; then
  set -- --workspace
fi
exec cargo test --release --locked "$@" prop_

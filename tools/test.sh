#!/usr/bin/env bash
# Runs all of firegate's tests: installs missing Debian packages, configures, builds and runs ctest.
# Usage: tools/test.sh [PRESET]   PRESET: release (default), dev, asan, tsan (see CMakePresets.json)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
preset=${1:-release}
cd "$root"
tools/deps.sh
# FIREGATE_TEST_PEERS (a folder with firegate-sim and the reference centres; .ci/run gives the release
# build's to the sanitizer builds): passed every time, so that a tree configured with it once does not
# keep it when it is not given.
cmake --preset "$preset" -DFIREGATE_TEST_PEERS="${FIREGATE_TEST_PEERS-}" >/dev/null
# As many jobs as cores: ninja's default (cores + 2) is slower on the two-core CI machine.
cmake --build --preset "$preset" --parallel "$(nproc)"
# Sanitizer reports fail the test, including those of the daemons the system tests start.
case "$preset" in
  asan)
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export FIREGATE_CRASH_EPISODES=${FIREGATE_CRASH_EPISODES:-30}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    ;;
  tsan)
    export TSAN_OPTIONS=${TSAN_OPTIONS:-exitcode=66:halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp}
    export FIREGATE_CRASH_EPISODES=${FIREGATE_CRASH_EPISODES:-30}
    ;;
esac
# Twice as many tests as cores: the system tests spend most of their time waiting (timers, sockets,
# child processes), so the cores would otherwise idle (release suite on 2 cores: 82 s at -j2, 44 s
# at -j4).
ctest --preset "$preset" -j "$(($(nproc) * 2))"

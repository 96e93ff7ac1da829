#!/usr/bin/env bash
# Builds the libFuzzer targets (preset "fuzz", clang 14 with ASan + UBSan) and runs each for a bounded
# time from its seed corpus. Exits non-zero once a target crashes (no further target is started),
# leaving the reproducer in build/fuzz/ as <target>-crash-<sha1> (or -leak-, -timeout-, -oom-).
# Usage: tools/fuzz.sh [SECONDS_EACH] [TARGET...]   (default 20 s, every target)
#   TARGET is a name below, with or without "fuzz_": tools/fuzz.sh 600 modbus_rtu_stream control_session
#   FUZZ_JOBS=N runs N targets at once (default 1); each one's output is shown when it ends and kept
#   in build/fuzz/<target>.log. The growing corpora stay in build/fuzz/corpus-<target>.
#   FUZZ_BUILD_JOBS=N bounds the build's parallelism (default: every core); FUZZ_BUILD_ONLY=1 builds
#   the targets and runs none (.ci/run builds them in the background).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-20}
shift $(($# > 0 ? 1 : 0))
jobs=${FUZZ_JOBS:-1}
all=(modbus_response config command mqtt_mapping gb26875 modbus_rtu_stream modbus_tcp_stream mqtt_inbox
  profile gb26875_downlink control_session rate_limiter gb26875_stream event_record poll_codec config_patch)
if ! [[ $seconds =~ ^[0-9]+$ ]] || ! [[ $jobs =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: [FUZZ_JOBS=N] tools/fuzz.sh [SECONDS_EACH] [TARGET...]; targets: ${all[*]}" >&2
  exit 2
fi
targets=()
for name in "$@"; do
  name=${name#fuzz_}
  if [[ " ${all[*]} " != *" $name "* ]]; then
    echo "fuzz: unknown target \"$name\"; targets: ${all[*]}" >&2
    exit 2
  fi
  targets+=("$name")
done
((${#targets[@]} > 0)) || targets=("${all[@]}")

cd "$root"
tools/deps.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --parallel "${FUZZ_BUILD_JOBS:-$(nproc)}" --target "${targets[@]/#/fuzz_}"
[[ ${FUZZ_BUILD_ONLY:-0} == 1 ]] && exit 0

# One target: its output goes to build/fuzz/<target>.log; the status is libFuzzer's.
run_one() {
  local target=$1 work="build/fuzz/corpus-$1" extra=(-max_len=4096)
  case $target in
    profile) extra=(-max_len=16384) ;;  # the shipped profiles run to 11 KB
    # Real sockets and coroutines: tens of thousands of features an input, which libFuzzer 14's
    # entropic schedule pays for on every run (3-4 times fewer runs); the plain schedule here.
    modbus_tcp_stream | gb26875_downlink | control_session) extra+=(-entropic=0) ;;
  esac
  mkdir -p "$work"
  (cd build/fuzz && "./tests/fuzz/fuzz_$target" -max_total_time="$seconds" "${extra[@]}" -timeout=5 \
    -print_final_stats=1 -artifact_prefix="$root/build/fuzz/$target-" \
    "$root/build/fuzz/corpus-$target" "$root/tests/fuzz/corpus/$target") >"build/fuzz/$target.log" 2>&1
}

declare -A running=()  # pid -> target
failed=()
# Waits for one running target, shows the end of its output and records a failure.
reap() {
  local pid status=0
  wait -n -p pid "${!running[@]}" || status=$?
  local target=${running[$pid]}
  unset "running[$pid]"
  echo "fuzz: $target ended (status $status)"
  if ((status == 0)); then
    # Coverage, features and corpus at the end, then the final stats.
    grep -E "^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs|^stat::" "build/fuzz/$target.log" || tail -12 "build/fuzz/$target.log"
  else
    tail -60 "build/fuzz/$target.log"
    failed+=("$target")
  fi
}

for target in "${targets[@]}"; do
  ((${#failed[@]} == 0)) || break
  while ((${#running[@]} >= jobs)); do reap; done
  ((${#failed[@]} == 0)) || break
  echo "fuzz: $target for ${seconds}s"
  run_one "$target" &
  running[$!]=$target
done
while ((${#running[@]} > 0)); do reap; done

if ((${#failed[@]} > 0)); then
  echo "fuzz: crash in ${failed[*]} (reproducers in build/fuzz/)" >&2
  exit 1
fi
echo "fuzz: no crash"

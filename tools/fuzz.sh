#!/usr/bin/env bash
# Builds the libFuzzer targets (preset "fuzz", clang 14 with ASan + UBSan) and runs each for a bounded
# time from its seed corpus. Exits non-zero on the first crash, leaving the reproducer in build/fuzz/.
# Usage: tools/fuzz.sh [SECONDS_EACH]   (default 20)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-20}
cd "$root"
tools/deps.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --parallel "$(nproc)" --target fuzz_modbus_response fuzz_config fuzz_command \
  fuzz_mqtt_mapping fuzz_gb26875
for target in modbus_response config command mqtt_mapping gb26875; do
  work="build/fuzz/corpus-$target"
  mkdir -p "$work"
  echo "fuzz: $target for ${seconds}s"
  (cd build/fuzz && "./tests/fuzz/fuzz_$target" -max_total_time="$seconds" -max_len=4096 -timeout=5 \
      -print_final_stats=1 "$root/build/fuzz/corpus-$target" "$root/tests/fuzz/corpus/$target" 2>&1 | tail -12)
done
echo "fuzz: no crash"

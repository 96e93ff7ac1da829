#!/usr/bin/env bash
# The unit and integration tests built for arm64 with Debian's cross compilers (multiarch) and run
# here under qemu-user, as most small-place boxes are ARM boards.
#   tools/test-arm64.sh [CTEST ARGS...]      (default: -R '^(unit|integration):')
# Needs root (or sudo) the first time: it adds the arm64 architecture, installs the cross compilers,
# the :arm64 libraries and qemu-user, and registers qemu for arm64 programs with binfmt_misc, so the
# tests' child processes (firegate-sim) run too. The system tests stay amd64-only: they start the
# amd64 mosquitto and pymodbus peers, which is fine, but they time real alarms end to end and under
# emulation the arm64 daemon is several times slower than a real board (docs/install.md, "arm64").
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build/arm64
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)

if ! dpkg-checkbuilddeps -a arm64 "$root/debian/control" >/dev/null 2>&1 \
  || ! dpkg-query -W -f='${Status}\n' libmodbus-dev:arm64 2>/dev/null | grep -q "install ok installed" \
  || ! dpkg-query -W -f='${Status}\n' qemu-user 2>/dev/null | grep -q "install ok installed"; then
  echo "test-arm64: installing the arm64 build dependencies, the cross compilers and qemu-user"
  "${sudo[@]}" dpkg --add-architecture arm64
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    crossbuild-essential-arm64 qemu-user qemu-user-binfmt libmodbus-dev:arm64 catch2 >/dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq -a arm64 "$root" >/dev/null
fi
"$root/tools/deps.sh"  # the amd64 peers the tests use: mosquitto, pymodbus, socat

# arm64 programs started by the tests (firegate-sim) run through qemu by the kernel's binfmt_misc.
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
  [[ -e /proc/sys/fs/binfmt_misc/register ]] \
    || "${sudo[@]}" mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  "${sudo[@]}" /lib/systemd/systemd-binfmt /usr/lib/binfmt.d/qemu-aarch64.conf
fi

cmake -S "$root" -B "$build" -G Ninja --toolchain "$root/tools/cross/aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DFIREGATE_WERROR=ON -DFIREGATE_BENCH=OFF -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 >/dev/null
cmake --build "$build" --parallel "$(nproc)" --target unit_tests integration_tests firegate-sim
file "$build/tests/unit_tests" | grep -q aarch64 || { echo "test-arm64: unit_tests is not an arm64 program" >&2; exit 1; }
cd "$build"
if (($# == 0)); then set -- -R '^(unit|integration):'; fi
ctest --output-on-failure -j "$(nproc)" "$@"

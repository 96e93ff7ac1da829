#!/usr/bin/env bash
# The packaging checks CI can afford on every run, without building the packages (tools/package.sh
# and tools/test-package.sh do that; docs/install.md says how long): lintian on the source package
# (debian/control, copyright, rules, changelog), the manual pages as lintian reads them, and the unit
# as CMake installs it from a release build: systemd-analyze verify clean, exposure at most 1.9.
#   tools/check-packaging.sh [BUILD_DIR]     (default build/release, built)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "${1:-$root/build/release}" && pwd)
# Only what these checks use (tools/debian-packaging.txt has what a package build needs).
"$root/tools/deps.sh" <(printf '%s\n' dpkg-dev lintian systemd man-db)

work=$(mktemp -d /tmp/firegate-check-packaging.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "check-packaging: FAILED: $*" >&2; failures=$((failures + 1)); }

# The source package, from a copy of the tree without build products.
version=$(dpkg-parsechangelog -l "$root/debian/changelog" -S Version)
src="$work/firegate-$version"
mkdir -p "$src"
tar -C "$root" --exclude=./build --exclude=./.git --exclude='./obj-*' -cf - . | tar -C "$src" -xf -
(cd "$work" && dpkg-source -b "firegate-$version" >"$work/source.log" 2>&1) \
  || { cat "$work/source.log" >&2; fail "dpkg-source -b"; }
if ! lintian --fail-on error,warning "$work/firegate_$version.dsc" >"$work/lintian.log" 2>&1; then
  cat "$work/lintian.log" >&2
  fail "lintian on the source package"
fi
echo "check-packaging: lintian on the source package: $(grep -c . "$work/lintian.log" || true) line(s) of remarks"

# Manual pages, as lintian reads them in the binary packages.
for page in "$root"/daemon/firegated.8 "$root"/daemon/config/firegate.toml.5 "$root"/tools/*/*.[158]; do
  out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null)
  [[ -z $out ]] || fail "man warnings in $page: $out"
done

# The unit as installed, with the paths it was configured with, under a scratch root.
DESTDIR="$work/root" cmake --install "$build" >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "cmake --install"; }
unit=$(find "$work/root" -name firegated.service | head -1)
if [[ -z $unit ]]; then
  fail "cmake --install wrote no firegated.service"
else
  # The programs are under the scratch root: point the unit's commands there for verify. The manual
  # pages are checked above (and installed ones by tools/test-package.sh).
  mkdir -p "$work/unit"
  sed -E "s#^(ExecStart=)(/[^ ]+)#\1$work/root\2#" "$unit" >"$work/unit/firegated.service"
  verify=$(systemd-analyze verify --man=no "$work/unit/firegated.service" 2>&1 | grep -v "^$" || true)
  [[ -z $verify ]] || fail "systemd-analyze verify: $verify"
  exposure=$(systemd-analyze security --offline=yes "$unit" 2>&1 \
    | sed -n 's/.*Overall exposure level for firegated.service: \([0-9.]*\).*/\1/p')
  awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 1.9) }' || fail "exposure '$exposure' above 1.9"
  echo "check-packaging: unit ${unit#"$work/root"}: verify clean, exposure $exposure"
fi

((failures == 0)) || { echo "check-packaging: $failures check(s) failed" >&2; exit 1; }
echo "check-packaging: every check passed"

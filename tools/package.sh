#!/usr/bin/env bash
# Builds firegate's Debian packages (firegate, firegate-tools) from this tree with Debian 12's own
# packages, checks them with lintian, and leaves them in one folder.
#   tools/package.sh [--arch arm64] [OUT]      (OUT default: build/packages, or build/packages-ARCH)
# The tree is copied first (without build/ and .git), so the work tree stays clean and the packages
# hold what is in it, committed or not. --arch cross-builds through Debian multiarch (docs/install.md,
# "arm64").
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
arch=
if [[ ${1:-} == --arch ]]; then arch=$2; shift 2; fi
out=${1:-$root/build/packages${arch:+-$arch}}

"$root/tools/deps.sh" "$root/tools/debian-packages.txt" "$root/tools/debian-packaging.txt"
if [[ -n $arch ]] && ! dpkg-checkbuilddeps -a "$arch" "$root/debian/control" >/dev/null 2>&1; then
  # The cross compilers and the build dependencies of the other architecture (multiarch).
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  echo "package: installing the $arch build dependencies"
  "${sudo[@]}" dpkg --add-architecture "$arch"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "crossbuild-essential-$arch" >/dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq -a "$arch" "$root" >/dev/null
fi

version=$(dpkg-parsechangelog -l "$root/debian/changelog" -S Version)
# A fixed folder, so that ccache (when installed) finds the same paths in the compiler's arguments
# (Debian's -ffile-prefix-map names it) and a rebuild is quick.
work=$root/build/package-work${arch:+-$arch}
rm -rf "$work"
mkdir -p "$work"
src="$work/firegate-$version"
mkdir -p "$src"
tar -C "$root" --exclude=./build --exclude=./.git --exclude='./obj-*' -cf - . | tar -C "$src" -xf -

flags=(-us -uc -b)
if [[ -n $arch ]]; then
  flags+=(-a "$arch" -Pcross,nocheck)
  export DEB_BUILD_OPTIONS="nocheck${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}"
fi
export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }parallel=$(nproc)"
# Ccache when present: a rebuild of the same tree is quick.
if command -v ccache >/dev/null; then export CMAKE_CXX_COMPILER_LAUNCHER=ccache; fi
echo "package: building firegate $version${arch:+ for $arch} in $src"
start=$SECONDS
(cd "$src" && dpkg-buildpackage "${flags[@]}" >"$work/build.log" 2>&1) || {
  tail -40 "$work/build.log" >&2
  echo "package: dpkg-buildpackage failed; the whole log is $work/build.log" >&2
  exit 1
}
echo "package: built in $((SECONDS - start)) s"

mkdir -p "$out"
rm -f "$out"/*.deb "$out"/*.ddeb "$out"/*.changes "$out"/*.buildinfo
mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out"/
mv "$work"/*.ddeb "$out"/ 2>/dev/null || true
rm -rf "$src"  # the copy and its build tree; build.log stays

# No errors and no warnings; overrides (debian/*.lintian-overrides) only with a written reason.
lintian --fail-on error,warning --info "$out"/*.deb
ls -l "$out"/*.deb

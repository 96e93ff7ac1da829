#!/usr/bin/env bash
# Installs the Debian packages listed in tools/debian-packages.txt (or the lists given, such as
# tools/debian-packaging.txt) that are missing. Idempotent and silent when everything is present;
# needs root (or sudo) only when it installs.
#   tools/deps.sh [LIST...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lists=("$@")
((${#lists[@]} > 0)) || lists=("$here/debian-packages.txt")
mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "${lists[@]}")
missing=()
native=$(dpkg --print-architecture)
for pkg in "${wanted[@]}"; do
  # This machine's own architecture (or all): with multiarch (tools/package.sh --arch) a -dev
  # package may be installed for another architecture as well.
  dpkg-query -W -f='${Architecture} ${Status}\n' "$pkg" 2>/dev/null \
    | grep -qE "^($native|all) install ok installed$" || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "deps: missing packages (${missing[*]}) and not root; run as root or install sudo" >&2; exit 1; }
  sudo=(sudo)
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# policy-rc.d may refuse to start mosquitto's system service (containers); the package still installs.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/firegate-deps.log 2>&1 \
  || { echo "deps: apt-get install failed; see /tmp/firegate-deps.log" >&2; tail -20 /tmp/firegate-deps.log >&2; exit 1; }

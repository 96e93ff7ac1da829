#!/usr/bin/env bash
# Installs the amd64 packages that tools/package.sh built on this machine, as an installer would,
# and checks what the package promises (docs/install.md): the user and groups, the folders and their
# modes, the unit enabled and its checks (systemd-analyze verify, exposure <= 1.9), the daemon
# started as the unit starts it with the example file and its socket reachable by an operator and
# no one else, a local edit of the site file kept across an upgrade to a higher version whose
# example changed too, remove keeping the site, purge removing it.
#   tools/test-package.sh [--arch ARCH] [DEB_DIR]     (default build/packages, or build/packages-ARCH)
# --arch arm64 installs the arm64 packages through multiarch and runs them under qemu-user
# (binfmt_misc; tools/test-arm64.sh sets it up): the same checks, on the programs a board runs.
# It changes the machine (packages, users, /etc/firegate): run it on a disposable machine or in a
# throwaway root. It refuses to run where dpkg knows firegate in any state or where its user, groups
# or folders exist already, and puts the machine back as it found it (packages purged, the test users
# and the firegate user and groups removed). The daemon runs as the unit's user, groups and umask, not
# inside the unit's sandbox: no systemd runs here (tools/check-packaging.sh checks the unit itself).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
arch=
if [[ ${1:-} == --arch ]]; then arch=$2; shift 2; fi
debs=$(cd "${1:-$root/build/packages${arch:+-$arch}}" && pwd)
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
arch=${arch:-$(dpkg --print-architecture)}
version=$(dpkg-parsechangelog -l "$root/debian/changelog" -S Version)
deb=$debs/firegate_${version}_${arch}.deb
tools_deb=$debs/firegate-tools_${version}_${arch}.deb
[[ -f $deb && -f $tools_deb ]] || { echo "test-package: no $deb; run tools/package.sh first" >&2; exit 1; }
if dpkg-query -W firegate firegate-tools >/dev/null 2>&1 || getent passwd firegate >/dev/null \
  || getent group firegate >/dev/null || getent group firegate-operators >/dev/null \
  || [[ -e /etc/firegate || -e /var/lib/firegate ]]; then
  echo "test-package: firegate (its package, user, groups or folders) is on this machine already; this" \
    "script installs and purges it, so run it on a disposable machine" >&2
  exit 1
fi

work=$(mktemp -d /tmp/firegate-test-package.XXXXXX)
chmod 0755 "$work"
daemon_pid=
broker_pid=
center_pid=
failures=0
step() { echo "test-package: $*"; }
fail() { echo "test-package: FAILED: $*" >&2; failures=$((failures + 1)); }
check() {  # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then echo "  ok    $what"; else fail "$what ($*)"; fi
}
equals() {  # equals DESCRIPTION EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then echo "  ok    $1: $3"; else fail "$1: expected '$2', found '$3'"; fi
}
cleanup() {
  [[ -n $daemon_pid ]] && "${sudo[@]}" kill "$daemon_pid" 2>/dev/null || true
  [[ -n $center_pid ]] && kill "$center_pid" "$broker_pid" 2>/dev/null || true
  "${sudo[@]}" dpkg --purge firegate-tools firegate >/dev/null 2>&1 || true
  for u in fg-operator fg-visitor firegate; do "${sudo[@]}" userdel "$u" >/dev/null 2>&1 || true; done
  for g in firegate-operators firegate; do "${sudo[@]}" groupdel "$g" >/dev/null 2>&1 || true; done
  "${sudo[@]}" rm -rf "$work" /etc/systemd/system/multi-user.target.wants/firegated.service
}
trap cleanup EXIT

apt_install() {
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >"$work/apt.log" 2>&1 \
    || { tail -20 "$work/apt.log" >&2; fail "apt-get install $*"; exit 1; }
}
mode_of() { stat -c '%U:%G %a' "$1" 2>/dev/null || echo missing; }

# The daemon as the unit starts it (no systemd runs here): its user, groups and umask, the unit's
# ExecStart. Waits for the control socket.
start_daemon() {
  local log=$work/daemon-$1.log
  "${sudo[@]}" touch "$log"
  "${sudo[@]}" chown firegate "$log"
  "${sudo[@]}" bash -c "umask 0077; exec setpriv --reuid=firegate --regid=firegate --init-groups \
    $(grep -o '^ExecStart=.*' /lib/systemd/system/firegated.service | cut -d= -f2-) >>'$log' 2>&1" &
  daemon_pid=$!
  for _ in $(seq 100); do [[ -S /run/firegate/control.sock ]] && return 0; sleep 0.1; done
  fail "the daemon did not open its control socket in 10 s"
  "${sudo[@]}" tail -20 "$log" >&2
  return 1
}
stop_daemon() {
  kill -TERM "$daemon_pid" 2>/dev/null || "${sudo[@]}" kill -TERM "$daemon_pid" || true
  local rc=0
  wait "$daemon_pid" || rc=$?
  daemon_pid=
  equals "firegated exit status on SIGTERM" 0 "$rc"
}

step "install $deb"
apt_install "$deb" "$tools_deb"

step "the user, the groups and the folders"
check "user firegate exists" id firegate
equals "firegate's groups" "dialout firegate firegate-operators" "$(id -nG firegate | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')"
equals "firegate's shell" "/usr/sbin/nologin" "$(getent passwd firegate | cut -d: -f7)"
equals "/etc/firegate" "root:root 755" "$(mode_of /etc/firegate)"
equals "/etc/firegate/firegate.toml (it may hold passwords)" "root:firegate 640" "$(mode_of /etc/firegate/firegate.toml)"
check "firegate.toml is a conffile" grep -qx /etc/firegate/firegate.toml /var/lib/dpkg/info/firegate.conffiles
check "the site's profile folders exist" test -d /etc/firegate/profiles/modbus -a -d /etc/firegate/profiles/mqtt
check "the shipped SD-1 profile" test -f /usr/share/firegate/profiles/modbus/sd-1.toml
equals "/var/lib/firegate" "firegate:firegate 700" "$(mode_of /var/lib/firegate)"
equals "/run/firegate" "firegate:firegate-operators 2750" "$(mode_of /run/firegate)"
check "the unit is enabled" test -L /etc/systemd/system/multi-user.target.wants/firegated.service

step "the installed programs and the unit"
equals "firegated --version" "firegated $version" "$(/usr/sbin/firegated --version)"
check "firegatectl --version" /usr/bin/firegatectl --version
check "firegate-sim --help" /usr/bin/firegate-sim --help
check "the new site's file validates" /usr/sbin/firegated --check-config /etc/firegate/firegate.toml
check "the commented example validates against the shipped profiles" bash -c \
  "sed 's#^dir = \"profiles\"#dir = \"/etc/firegate/profiles\"#' /usr/share/doc/firegate/examples/firegate.toml >$work/example.toml && /usr/sbin/firegated --check-config $work/example.toml"
check "man firegated, firegate.toml, firegatectl" man -w firegated.8 firegate.toml.5 firegatectl.1
verify=$(systemd-analyze verify /lib/systemd/system/firegated.service 2>&1 || true)
equals "systemd-analyze verify" "" "$verify"
exposure=$(systemd-analyze security --offline=yes /lib/systemd/system/firegated.service 2>&1 \
  | sed -n 's/.*Overall exposure level for firegated.service: \([0-9.]*\).*/\1/p')
check "exposure $exposure <= 1.9" awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 1.9) }'

step "the daemon as the unit runs it, with the new site's file (no buses)"
"${sudo[@]}" useradd --no-create-home --groups firegate-operators fg-operator
"${sudo[@]}" useradd --no-create-home fg-visitor
start_daemon first
equals "the control socket" "firegate:firegate-operators 660" "$(mode_of /run/firegate/control.sock)"
check "an operator runs firegatectl status" "${sudo[@]}" setpriv --reuid=fg-operator --regid=fg-operator --init-groups /usr/bin/firegatectl status
if "${sudo[@]}" setpriv --reuid=fg-visitor --regid=fg-visitor --init-groups /usr/bin/firegatectl status >/dev/null 2>&1; then
  fail "a user outside firegate-operators reached the control socket"
else
  echo "  ok    a user outside firegate-operators is refused"
fi
equals "the database" "firegate:firegate 600" "$(mode_of /var/lib/firegate/firegate.db)"
check "the database is unreadable to operators" bash -c "! ${sudo[*]} setpriv --reuid=fg-operator --regid=fg-operator --init-groups cat /var/lib/firegate/firegate.db"
stop_daemon

step "edit the site file, then upgrade to a higher version whose example changed too"
"${sudo[@]}" sed -i 's/^description = "new firegate box"/description = "edited on site"/' /etc/firegate/firegate.toml
check "the edit is in place" grep -q 'edited on site' /etc/firegate/firegate.toml
new_version="${version}+upgrade1"
for pkg in firegate firegate-tools; do
  src=$debs/${pkg}_${version}_${arch}.deb
  tree=$work/$pkg
  dpkg-deb -R "$src" "$tree"
  sed -i "s/^Version: .*/Version: $new_version/; s/(= $version)/(= $new_version)/" "$tree/DEBIAN/control"
  if [[ $pkg == firegate ]]; then
    echo "# a line the next version added to the example" >>"$tree/etc/firegate/firegate.toml"
    (cd "$tree" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' \
      | xargs -0 md5sum >DEBIAN/md5sums)
  fi
  fakeroot dpkg-deb -b "$tree" "$work/${pkg}_${new_version}_${arch}.deb" >/dev/null
done
apt_install "$work/firegate_${new_version}_${arch}.deb" "$work/firegate-tools_${new_version}_${arch}.deb"
equals "installed version" "$new_version" "$(dpkg-query -W -f='${Version}' firegate)"
check "the local edit survived the upgrade" grep -q 'edited on site' /etc/firegate/firegate.toml
check "the new example is kept beside it" test -f /etc/firegate/firegate.toml.dpkg-dist
equals "/etc/firegate/firegate.toml after the upgrade" "root:firegate 640" "$(mode_of /etc/firegate/firegate.toml)"
check "the edited file still validates" /usr/sbin/firegated --check-config /etc/firegate/firegate.toml
step "commissioning as docs/install.md does it: the uplink pointed at a broker, firegatectl test-alarm"
# The platform is a mosquitto on loopback and firegate-center (from firegate-tools) acknowledging
# alarms as a control room would; the site file is edited the way a technician edits it.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
broker_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
/usr/bin/firegate-center --port "$port" --auto-ack 0.5 --verdict test >"$work/center.log" 2>&1 &
center_pid=$!
for _ in $(seq 100); do grep -q watching "$work/center.log" && break; sleep 0.1; done
"${sudo[@]}" sed -i "s/^host = \"platform.example.org\"/host = \"127.0.0.1\"/; s/^port = 1883\$/port = $port/" \
  /etc/firegate/firegate.toml
start_daemon upgraded
check "the upgraded daemon opens the database the first one made (storage ok, not in memory)" bash -c \
  "${sudo[*]} /usr/bin/firegatectl --json status \
   | python3 -c 'import json, sys; sys.exit(json.load(sys.stdin)[\"storage\"][\"state\"] != \"ok\")'"
if "${sudo[@]}" setpriv --reuid=fg-operator --regid=fg-operator --init-groups \
  /usr/bin/firegatectl test-alarm --wait 60 >"$work/test-alarm.log" 2>&1; then
  echo "  ok    firegatectl test-alarm: acknowledged by the platform"
else
  fail "firegatectl test-alarm: $(tail -3 "$work/test-alarm.log")"
fi
stop_daemon
kill "$center_pid" "$broker_pid" 2>/dev/null || true

step "remove keeps the site; purge removes it"
"${sudo[@]}" dpkg --remove firegate-tools firegate >"$work/remove.log" 2>&1 || { cat "$work/remove.log" >&2; fail "dpkg --remove"; }
check "firegated is gone" test ! -e /usr/sbin/firegated
check "the site file stays" grep -q 'edited on site' /etc/firegate/firegate.toml
check "the database stays" test -f /var/lib/firegate/firegate.db
# dpkg, not apt: the packages came from files, and firegate-tools (no conffiles) is gone already.
"${sudo[@]}" dpkg --purge firegate-tools firegate >"$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; fail "dpkg --purge"; }
check "/etc/firegate is gone" test ! -e /etc/firegate
check "/var/lib/firegate is gone" test ! -e /var/lib/firegate
check "/run/firegate is gone" test ! -e /run/firegate
check "the unit's enablement is gone" test ! -e /etc/systemd/system/multi-user.target.wants/firegated.service

if ((failures > 0)); then
  echo "test-package: $failures check(s) failed" >&2
  exit 1
fi
echo "test-package: every check passed"

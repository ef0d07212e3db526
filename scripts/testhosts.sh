#!/usr/bin/env bash
# Test hosts that behave like machines: network namespaces on one bridge,
# each with its own address in 198.18.0.0/24 (RFC 2544's benchmarking range,
# never a private or public one), loopback up, and its own sshd.
#
#   scripts/testhosts.sh up N     make hosts th1..thN (N ≤ 50); prints "name address"
#   scripts/testhosts.sh down     remove everything "up" made, and nothing else
#   scripts/testhosts.sh status   list the hosts and whether their sshd runs
#   scripts/testhosts.sh addr I   print host thI's address
#
# Layout: bridge adbtbr0 (198.18.0.1/24, this machine's side: the manager
# reaches the hosts through it), host thI in netns adbthI with eth0 =
# 198.18.0.(10+I)/24 on a veth whose other end, adbtvI, is on the bridge.
# Cut host I off the network with `ip link set adbtvI down` (and bring it
# back with `up`): the host, its processes and its files stay.
#
# The filesystem is shared: each host's data lives under its own directory,
# $TESTHOSTS_DIR/thI/data (mode 0755), and its sshd's keys, config and pid
# file under $TESTHOSTS_DIR/thI. TESTHOSTS_DIR defaults to
# /var/tmp/adbtesthosts (not /run: agents refuse data directories in system
# directories);
# its "made" file lists what up created, so down removes only that.
#
# Needs root and iproute2; installs Debian's openssh-server when sshd is
# missing.
set -euo pipefail

DIR=${TESTHOSTS_DIR:-/var/tmp/adbtesthosts}
BR=adbtbr0
NET=198.18.0
MADE=$DIR/made

die() { echo "testhosts: $*" >&2; exit 1; }

addr() { echo "$NET.$((10 + $1))"; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (network namespaces)"; }

ensure_sshd() {
	if [ ! -x /usr/sbin/sshd ]; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q openssh-server >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null && apt-get install -y -q openssh-server >/dev/null; } ||
			die "cannot install openssh-server"
	fi
	# sshd's privilege separation directory.
	mkdir -p /run/sshd
	chmod 0755 /run/sshd
}

# made records one thing up created; down undoes the lines in reverse.
made() { echo "$*" >>"$MADE"; }

up() {
	local n=$1
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 50 ] || die "up N: N must be 1..50"
	need_root
	[ -e "$MADE" ] && die "test hosts are already up ($MADE); run down first"
	ip link show "$BR" >/dev/null 2>&1 && die "bridge $BR exists but was not made by this script; remove it first"
	ensure_sshd
	mkdir -p "$DIR"
	chmod 0755 "$DIR"
	: >"$MADE"
	trap 'echo "testhosts: up failed; undoing" >&2; down >/dev/null 2>&1 || true' ERR

	ip link add "$BR" type bridge
	made link "$BR"
	ip addr add "$NET.1/24" dev "$BR"
	ip link set "$BR" up

	local i ns veth a h
	for i in $(seq 1 "$n"); do
		ns=adbth$i veth=adbtv$i a=$(addr "$i") h=$DIR/th$i
		ip netns list | grep -qw "^$ns" && die "netns $ns exists but was not made by this script"
		ip netns add "$ns"
		made netns "$ns"
		ip link add "$veth" type veth peer name eth0 netns "$ns"
		made link "$veth"
		ip link set "$veth" master "$BR" up
		ip -n "$ns" link set lo up
		ip -n "$ns" addr add "$a/24" dev eth0
		ip -n "$ns" link set eth0 up

		mkdir -p "$h/data"
		made dir "$h"
		chmod 0755 "$h" "$h/data"
		ssh-keygen -q -t ed25519 -N '' -f "$h/ssh_host_ed25519_key" -C "th$i" >/dev/null
		cat >"$h/sshd_config" <<EOF
# sshd of test host th$i ($a), made by scripts/testhosts.sh
# Every address of the host (its namespace has only its own): a host
# given a new address (FLUSH HOST) is still reached over SSH.
ListenAddress 0.0.0.0
Port 22
HostKey $h/ssh_host_ed25519_key
PidFile $h/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
StrictModes yes
AuthorizedKeysFile .ssh/authorized_keys
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOF
		ip netns exec "$ns" /usr/sbin/sshd -f "$h/sshd_config" -E "$h/sshd.log"
		made sshd "$h/sshd.pid"
	done
	# Each sshd answers before up says the hosts are ready.
	for i in $(seq 1 "$n"); do
		a=$(addr "$i")
		for _ in $(seq 50); do
			ssh-keyscan -T 1 -t ed25519 "$a" >/dev/null 2>&1 && break
			sleep 0.1
		done
		ssh-keyscan -T 1 -t ed25519 "$a" >/dev/null 2>&1 || die "sshd of th$i ($a) does not answer (see $DIR/th$i/sshd.log)"
		echo "th$i $a"
	done
	trap - ERR
}

down() {
	need_root
	if [ ! -f "$MADE" ]; then
		# The list went with its directory (a test removed it first): the
		# names are this script's own — up refuses to start when any of
		# them exists — so what is left of them is what an up made.
		local left=0 ns l
		for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^adbth[0-9]+$/ {print $1}'); do
			for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
			ip netns del "$ns" 2>/dev/null || true
			left=1
		done
		for l in $(ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^adbtv[0-9]+(@|$)/ || $2 == "adbtbr0" {sub(/@.*/, "", $2); print $2}'); do
			ip link del "$l" 2>/dev/null || true
			left=1
		done
		if [ "$left" = 1 ]; then echo "testhosts: down (without $MADE: removed the adbth*/adbtv*/adbtbr0 left behind)"; else echo "testhosts: nothing to remove"; fi
		return 0
	fi
	local kind what
	# Reverse order: sshd before its netns, links before the bridge.
	tac "$MADE" | while read -r kind what; do
		case $kind in
		sshd)
			if [ -f "$what" ]; then
				kill "$(cat "$what")" 2>/dev/null || true
			fi
			;;
		netns)
			# Whatever still runs in the namespace (nodes, agents a test
			# started there) goes with it.
			for p in $(ip netns pids "$what" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
			ip netns del "$what" 2>/dev/null || true
			;;
		link) ip link del "$what" 2>/dev/null || true ;;
		dir) rm -rf -- "$what" ;;
		esac
	done
	rm -f "$MADE"
	rmdir "$DIR" 2>/dev/null || true
	echo "testhosts: down"
}

status() {
	[ -f "$MADE" ] || { echo "testhosts: no hosts"; return 0; }
	local ns i a state
	for ns in $(awk '$1 == "netns" {print $2}' "$MADE"); do
		i=${ns#adbth} a=$(addr "$i")
		state="sshd down"
		if [ -f "$DIR/th$i/sshd.pid" ] && kill -0 "$(cat "$DIR/th$i/sshd.pid")" 2>/dev/null; then
			state="sshd up"
		fi
		link=$(cat "/sys/class/net/adbtv$i/operstate" 2>/dev/null || echo missing)
		echo "th$i $a $state link=$link"
	done
}

case ${1:-} in
up) up "${2:-}" ;;
down) down ;;
status) status ;;
addr) addr "${2:?addr I}" ;;
*) sed -n '2,21p' "$0" >&2; exit 2 ;;
esac

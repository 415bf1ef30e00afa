#!/usr/bin/env bash
# Installs what `make test`, `make demo` and `make bench` need on a fresh
# Debian machine: the test peers and tools from apt, the Go modules from the
# module proxy. Safe to run again; installs only what is missing.
set -euo pipefail

# `install-deps.sh demo` installs only what `make demo` needs.
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ip            || need+=(iproute2)
have ping          || need+=(iputils-ping)
if [ "${1:-}" != demo ]; then
have iperf3        || need+=(iperf3)
have tcpdump       || need+=(tcpdump)
have nft           || need+=(nftables)
have qemu-system-x86_64 || need+=(qemu-system-x86)
[ -x /bin/busybox ] || need+=(busybox-static)
have cpio          || need+=(cpio)
have ldd           || need+=(libc-bin)
have ethtool       || need+=(ethtool)
have setpriv       || need+=(util-linux)
have curl          || need+=(curl)             # netstack tests fetch through SOCKS5
have systemd-analyze || need+=(systemd)        # the unit in dist/ is verified
[ -x /usr/sbin/pptpd ] || need+=(pptpd)        # the PPTP server the kernel-peer guest runs
[ -x /usr/sbin/pppd ]  || need+=(ppp)
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${need[*]}; run as root (or apt-get install them) to install" >&2
  else
    echo "install-deps: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
go mod download

#!/usr/bin/env bash
# Installs what sshfs-rs and its tests need on a fresh Debian machine (as root, or with sudo):
# OpenSSH server (the tests start their own sshd), FUSE 3 (fusermount3, /dev/fuse), the C sshfs
# (compared against in benchmarks), git (used by the workflow tests), autofs (the mount helper's
# autofs test runs automount on a temporary map), useradd and pgrep/pkill (tests/ssh.rs and
# tests/unprivileged.rs make throwaway users and look for their processes), dbus, gnome-keyring
# and libsecret-tools (the keyring tests run a Secret Service of their own under dbus-run-session
# and read it with secret-tool), python3 (tests that make copy_file_range and mmap calls in a
# process of their own), ProFTPD with mod_sftp, rclone and python3-asyncssh (tests/other_servers.rs
# mounts SFTP servers that are not OpenSSH's). What a package cannot give (a kernel with autofs, fusectl, the kernel
# keyring...) makes a test print `skipped: ...` instead: docs/testing.md lists them.
set -euo pipefail
need=()
command -v /usr/sbin/sshd >/dev/null || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v sshfs >/dev/null || need+=(sshfs)
command -v git >/dev/null || need+=(git)
command -v /usr/sbin/automount >/dev/null || need+=(autofs)
command -v useradd >/dev/null || [ -x /usr/sbin/useradd ] || need+=(passwd)
command -v pgrep >/dev/null || need+=(procps)
command -v dbus-run-session >/dev/null || need+=(dbus)
command -v gnome-keyring-daemon >/dev/null || need+=(gnome-keyring)
command -v secret-tool >/dev/null || need+=(libsecret-tools)
command -v python3 >/dev/null || need+=(python3)
command -v /usr/sbin/proftpd >/dev/null || need+=(proftpd-core)
[ -e /usr/lib/proftpd/mod_sftp.so ] || need+=(proftpd-mod-crypto)
command -v rclone >/dev/null || need+=(rclone)
[ -e /usr/lib/python3/dist-packages/asyncssh ] || need+=(python3-asyncssh)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# sshd refuses to start without its privilege separation directory.
[ -d /run/sshd ] || { [ "$(id -u)" -eq 0 ] && mkdir -p /run/sshd; } || true

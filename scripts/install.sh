#!/usr/bin/env bash
# Installs sshfs-rs (as root, or with sudo):
#   $PREFIX/bin/sshfs-rs                       the program (default PREFIX /usr/local)
#   /sbin/mount.fuse.sshfs-rs -> that program  the mount helper: mount(8) looks for
#                                              mount.TYPE helpers in /sbin only, and runs it for
#                                              `mount -t fuse.sshfs-rs`, fstab lines and autofs
#   $PREFIX/share/man/man1/sshfs-rs.1          the man page
#   $PREFIX/share/bash-completion/completions/sshfs-rs,
#   $PREFIX/share/zsh/site-functions/_sshfs-rs,
#   $PREFIX/share/fish/vendor_completions.d/sshfs-rs.fish
#                                              shell completions (with the -o option names)
# Without the /sbin link, mount(8) falls back to mount.fuse3, which runs `sshfs-rs` from the
# default PATH (/usr/local/bin is on it): that works too, with mount(8)'s defaults (dev,suid).
#
#   scripts/install.sh                builds the release binary, then installs
#   BIN=path scripts/install.sh       installs that binary instead of building
#   DESTDIR=/tmp/pkg scripts/install.sh   installs under a staging root (for packaging)
#   scripts/install.sh --uninstall    removes them again
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
SBIN=${SBIN:-/sbin}
DESTDIR=${DESTDIR:-}
SUDO=""
[ "$(id -u)" -eq 0 ] || [ -n "$DESTDIR" ] || SUDO=sudo

bin_dst="$DESTDIR$PREFIX/bin/sshfs-rs"
helper_dst="$DESTDIR$SBIN/mount.fuse.sshfs-rs"
man_dst="$DESTDIR$PREFIX/share/man/man1/sshfs-rs.1"
bash_dst="$DESTDIR$PREFIX/share/bash-completion/completions/sshfs-rs"
zsh_dst="$DESTDIR$PREFIX/share/zsh/site-functions/_sshfs-rs"
fish_dst="$DESTDIR$PREFIX/share/fish/vendor_completions.d/sshfs-rs.fish"

if [ "${1:-}" = "--uninstall" ]; then
  $SUDO rm -f "$helper_dst" "$bin_dst" "$man_dst" "$bash_dst" "$zsh_dst" "$fish_dst"
  echo "removed $bin_dst, $helper_dst, $man_dst and the shell completions"
  exit 0
fi

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p sshfs-rs
  BIN=target/release/sshfs-rs
fi
$SUDO install -D -m 755 "$BIN" "$bin_dst"
$SUDO install -d "$DESTDIR$SBIN"
# The link names the installed path (not the staging root), so a DESTDIR tree works once copied.
$SUDO ln -sfn "$PREFIX/bin/sshfs-rs" "$helper_dst"
$SUDO install -D -m 644 docs/sshfs-rs.1 "$man_dst"
$SUDO install -D -m 644 completions/sshfs-rs.bash "$bash_dst"
$SUDO install -D -m 644 completions/_sshfs-rs "$zsh_dst"
$SUDO install -D -m 644 completions/sshfs-rs.fish "$fish_dst"
echo "installed $bin_dst, $helper_dst -> $PREFIX/bin/sshfs-rs, $man_dst, completions for bash ($bash_dst), zsh and fish"

#!/usr/bin/env bash
# Shows sshfs-rs working with no server of your own: installs what is missing, builds, starts a
# throwaway OpenSSH server on 127.0.0.1 with fresh keys, mounts a directory of it with sshfs-rs,
# and prints where it is and how to take it all down again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --quiet
bin="$PWD/target/release/sshfs-rs"

dir=$(mktemp -d /tmp/sshfs-rs-demo.XXXXXX)
ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$dir/user_key"
cp "$dir/user_key.pub" "$dir/authorized_keys"
mkdir -p "$dir/remote" "$dir/mnt"
echo "hello from the server side" > "$dir/remote/hello.txt"

for _ in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 20000))
  cat > "$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1:$port
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PidFile $dir/sshd.pid
PermitRootLogin yes
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp /usr/lib/openssh/sftp-server
CONF
  if /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"; then
    for _ in $(seq 50); do [ -s "$dir/sshd.pid" ] && break; sleep 0.1; done
    [ -s "$dir/sshd.pid" ] && break
  fi
done
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_key.pub")" > "$dir/known_hosts"

"$bin" "$(id -un)@127.0.0.1:$dir/remote" "$dir/mnt" -p "$port" \
  -o "IdentityFile=$dir/user_key,UserKnownHostsFile=$dir/known_hosts,StrictHostKeyChecking=yes,BatchMode=yes"

echo "sshfs-rs mounted $(id -un)@127.0.0.1:$dir/remote (a throwaway sshd on port $port) at:"
echo "    $dir/mnt"
ls -l "$dir/mnt"
cat "$dir/mnt/hello.txt"
echo
echo "Take it down with:"
echo "    fusermount3 -u $dir/mnt && kill \$(cat $dir/sshd.pid) && rm -rf $dir"

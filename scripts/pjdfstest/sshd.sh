#!/bin/sh
# Start a root sshd on 127.0.0.1:22922 serving /tmp/pjd/srv (keys in /tmp/pjd/ssh).
set -e
B=/tmp/pjd/ssh; mkdir -p $B /tmp/pjd/srv /run/sshd; chmod 755 /tmp/pjd/srv
[ -f $B/host ] || ssh-keygen -q -t ed25519 -N '' -C '' -f $B/host
[ -f $B/id ] || ssh-keygen -q -t ed25519 -N '' -C '' -f $B/id
cp $B/id.pub $B/authorized_keys
echo "[127.0.0.1]:22922 $(cut -d' ' -f1,2 $B/host.pub)" > $B/known_hosts
mkdir -p $B/home
cat > $B/sshd_config <<EOC
ListenAddress 127.0.0.1:22922
HostKey $B/host
PidFile $B/sshd.pid
PermitRootLogin yes
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile $B/authorized_keys
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel ERROR
EOC
/usr/sbin/sshd -f $B/sshd_config -E $B/sshd.log

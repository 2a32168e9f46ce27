#!/bin/sh
# mount.sh c|rs : mount /tmp/pjd/srv/<name> at /tmp/pjd/mnt-<name> with allow_other,default_permissions
set -e
B=/tmp/pjd/ssh; n=$1; mkdir -p /tmp/pjd/srv/$n /tmp/pjd/mnt-$n; chmod 755 /tmp/pjd/srv/$n
O="IdentityFile=$B/id,UserKnownHostsFile=$B/known_hosts,StrictHostKeyChecking=yes,BatchMode=yes"
case $n in
c) HOME=$B/home sshfs root@127.0.0.1:/tmp/pjd/srv/c /tmp/pjd/mnt-c -p 22922 -F /dev/null -o $O -o allow_other,default_permissions ;;
rs) HOME=$B/home ${RS:-target/debug/sshfs-rs} root@127.0.0.1:/tmp/pjd/srv/rs /tmp/pjd/mnt-rs -p 22922 -o $O -o allow_other,default_permissions ;;
esac

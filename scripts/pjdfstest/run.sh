#!/bin/sh
# run.sh NAME DIR [TESTS...]: run pjdfstest scripts (all by default; T=DIR for another tests tree) in DIR,
# 300 s limit each; `prove -v` logs in /tmp/pjd/out/NAME/
n=$1; d=$2; shift 2
T=${T:-/tmp/pjdfstest/tests}; out=/tmp/pjd/out/$n; mkdir -p $out
list="$*"; [ -n "$list" ] || list=$(cd $T && ls */*.t)
for t in $list; do
  f=$out/$(echo $t | tr / _).log
  (cd $d && timeout -k 5 300 prove -v $T/$t > $f 2>&1; echo "rc=$?" >> $f)
done

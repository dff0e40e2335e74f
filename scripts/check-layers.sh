#!/usr/bin/env bash
# The rules of the layers (docs/architecture.md), checked on the sources:
# who may import whom. Run by scripts/test.sh before the build; exits 1 with
# the offending lines.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
# target -> modules of this package it may import (external packages are free).
declare -A allowed=(
  [CFFmpeg]="" [CSystemd]="" [CLinux]=""
  [JobSchema]=""
  [MediaKit]="CFFmpeg CFFmpegLog JobSchema"
  [SpoolKit]="CLinux JobSchema"
  [SystemdSupport]="CSystemd"
  [SpoolOps]="SpoolKit JobSchema"
  [Jobs]="SpoolKit MediaKit JobSchema"
  [mediaspool]="SpoolKit MediaKit Jobs SystemdSupport SpoolOps JobSchema"
)
ours="CFFmpeg CFFmpegLog CSystemd CLinux JobSchema MediaKit SpoolKit SystemdSupport SpoolOps Jobs mediaspool"
for target in "${!allowed[@]}"; do
  dir="Sources/$target"
  [ -d "$dir" ] || continue
  while IFS= read -r line; do
    file="${line%%:*}"; module="$(echo "${line#*:}" | sed -E 's/^[0-9]+:[[:space:]]*(@[a-zA-Z_]+ )?import[[:space:]]+([A-Za-z_]+).*/\2/')"
    case " $ours " in *" $module "*) ;; *) continue ;; esac
    case " ${allowed[$target]} " in *" $module "*) continue ;; esac
    echo "layer rule broken: $file imports $module (allowed for $target: ${allowed[$target]:-none})" >&2
    fail=1
  done < <(grep -rnE '^[[:space:]]*(@[a-zA-Z_]+ )?import[[:space:]]+[A-Za-z_]+' "$dir" --include='*.swift' | sed -E 's/^([^:]+):([0-9]+):/\1:\2:/')
done
# SpoolKit reaches the kernel through its syscall layer only (Sys*.swift:
# EINTR retried, errno typed, paths as bytes): a bare system call anywhere
# else in it fails.
syscalls='open|openat|close|read|write|unlink|rename|renameat|flock|fsync|fdatasync|fchown|fchmod|kill|getpid|geteuid|usleep|inotify_init1|inotify_add_watch|readlink|realpath|mkdir|mkdirat|socket|bind|listen|accept|connect|ftruncate|pread|pwrite|lseek|fstat|lstat|fstatat'
while IFS= read -r line; do
  echo "syscall outside the syscall layer: $line" >&2
  fail=1
done < <(grep -nE "(^|[^.A-Za-z_])($syscalls)\(" Sources/SpoolKit/*.swift | grep -v '^Sources/SpoolKit/Sys' \
           | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' | grep -vE 'func [a-zA-Z]+\(' || true)
[ $fail -eq 0 ] && echo "layers: ok"
exit $fail

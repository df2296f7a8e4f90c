#!/bin/bash
A=/payload/build/e2e
cd /tmp
for k in "microvm.vmlinux initrd-none" "microvm.bzImage initrd-none" "cloud.bzImage initrd-cloud"; do
  set -- $k
  echo "=== $1"
  s=$(date +%s.%N)
  timeout 120 qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off,isa-serial=on -enable-kvm -cpu host -nodefaults -no-user-config -display none -no-reboot -m 256M -smp 1 -serial stdio -kernel $A/$1 -initrd $A/$2.cpio.gz -append "console=ttyS0 panic=-1 vibevmm.verbose=0 quiet" </dev/null 2>&1 | tail -5
  e=$(date +%s.%N); echo "rc=${PIPESTATUS[0]} wall=$(echo "$e - $s" | bc)"
done

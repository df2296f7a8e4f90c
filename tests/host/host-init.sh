#!/bin/sh
# /init of the test-host initramfs (busybox sh, PID 1), built by
# tests/host/make-host-initramfs.sh and booted by tests/host/testhost.sh.
# Kernel command line:
#   testhost.run=ID     run /payload/.testhost/ID/cmd in /payload, stdout and
#                       stderr to /payload/.testhost/ID/{stdout,stderr}, its
#                       exit status to /payload/.testhost/ID/status
#   testhost.hostusr=1  mount the 9p tag "hostusr" (the outer host's /usr,
#                       read-only) on /usr: its dynamically linked programs run
#   testhost.arm64libs=1  (arm64) mount the 9p tag "arm64libs" (the outer
#                       host's /usr/lib/aarch64-linux-gnu: its libc6:arm64
#                       and the other :arm64 libraries) there, read-only:
#                       programs cross-built there run
#   testhost.shell=1    interactive shell on the console afterwards
#   testhost.verbose=1  one line per module loaded, with the uptime
#   testhost.npt=0      (x86_64) kvm-amd without nested paging: L1 KVM
#                       shadows the nested guests' page tables itself
# Then it powers off. No `set -e` here: PID 1 must never exit.

export PATH=/payload/bin:/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root TERM=linux VIBEVMM_TESTHOST=1

say() { echo "testhost-init: $*"; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mdev -s
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1

run=; hostusr=0; arm64libs=0; shell=0; verbose=0; interactive=0; npt=1
read -r cmdline < /proc/cmdline
set -f
for arg in $cmdline; do
    case "$arg" in
        testhost.run=*) run=${arg#*=} ;;
        testhost.hostusr=*) hostusr=${arg#*=} ;;
        testhost.arm64libs=*) arm64libs=${arg#*=} ;;
        testhost.shell=*) shell=${arg#*=} ;;
        testhost.interactive=*) interactive=${arg#*=} ;;
        testhost.verbose=*) verbose=${arg#*=} ;;
        testhost.npt=*) npt=${arg#*=} ;;
    esac
done
set +f

# Modules in dependency order (x86: irqbypass, ccp, kvm, kvm-amd; tun, loop,
# virtio, 9p): only failures are reported. The others shipped in
# /lib/modules/KVER load with `modprobe NAME` (or by the kernel on demand).
moddir=/lib/modules/$(uname -r)
while read -r m; do
    [ -n "$m" ] || continue
    params=
    case "$m" in *kvm-amd.ko) [ "$npt" != 0 ] || params=npt=0 ;; esac
    # shellcheck disable=SC2086  # no parameters: no argument
    if out=$(insmod "$moddir/$m" $params 2>&1); then
        [ "$verbose" = 0 ] || say "module $(basename "$m" .ko): loaded at $(cut -d' ' -f1 /proc/uptime)"
    else
        say "module $(basename "$m" .ko): FAILED: $out"
    fi
done < "$moddir/boot-order"

hostname testhost
ip link set lo up 2>/dev/null

mkdir -p /payload
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 payload /payload; then
    say "cannot mount the payload (9p tag 'payload')"
fi
if [ "$hostusr" = 1 ]; then
    # the host's programs first (GNU tools, iproute2, python3), busybox after
    if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro hostusr /usr; then
        export PATH=/payload/bin:/usr/sbin:/usr/bin:/sbin:/bin
    else
        say "cannot mount the host's /usr (9p tag 'hostusr')"
    fi
fi
if [ "$arm64libs" = 1 ]; then
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro arm64libs /usr/lib/aarch64-linux-gnu ||
        say "cannot mount the arm64 libraries (9p tag 'arm64libs')"
fi
[ -c /dev/kvm ] || say "no /dev/kvm (KVM did not initialise?)"

if [ -n "$run" ]; then
    d=/payload/.testhost/$run
    if [ -f "$d/cmd" ]; then
        cut -d' ' -f1 /proc/uptime > "$d/ready"
        cd /payload || true
        if [ "$interactive" = 1 ]; then
            # the console is the command's terminal (setsid + cttyhack
            # make it the controlling tty, so raw mode and ^C work)
            setsid cttyhack sh "$d/cmd"
        else
            sh "$d/cmd" > "$d/stdout" 2> "$d/stderr" < /dev/null
        fi
        rc=$?
        cd /
        echo "$rc" > "$d/status.tmp" && mv "$d/status.tmp" "$d/status"
        say "command exited with $rc"
    else
        say "no $d/cmd"
    fi
fi

if [ "$shell" = 1 ]; then
    say "interactive shell; exit it to power off"
    cd /payload 2>/dev/null || cd /
    setsid cttyhack sh -l
fi

sync
umount /usr/lib/aarch64-linux-gnu 2>/dev/null
umount /usr 2>/dev/null
umount /payload 2>/dev/null
poweroff -f
while :; do sleep 3600; done

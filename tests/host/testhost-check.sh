#!/bin/sh
# testhost-check (installed in the test host's /bin): is KVM usable here?
# Exits 0 when it is, after printing
#   x86_64: "testhost: KVM ready (AMD-V, nested paging)"
#   arm64:  "testhost: KVM ready (arm64, EL2, vGICv3)"
ok=1
if [ ! -c /dev/kvm ]; then
    echo "testhost: no /dev/kvm"
    ok=0
fi
case "$(uname -m)" in
    aarch64)
        # KVM is built into Debian's arm64 kernel: it says in dmesg whether
        # it found EL2 and which vGIC it drives.
        log=$(dmesg | grep -E 'kvm \[[0-9]+\]|kvm:|vgic|Hyp mode|EL2' | sed 's/^\[ *[0-9.]*\] //')
        printf '%s\n' "$log" | sed '/^$/d; s/^/testhost: dmesg: /'
        if ! printf '%s\n' "$log" | grep -q -E '(VHE|Hyp) mode initialized successfully'; then
            echo "testhost: KVM did not initialise at EL2"
            ok=0
        fi
        if ! printf '%s\n' "$log" | grep -q 'GIC system register CPU interface enabled'; then
            echo "testhost: KVM found no vGICv3"
            ok=0
        fi
        [ "$ok" = 1 ] || exit 1
        echo "testhost: KVM ready (arm64, EL2, vGICv3)"
        exit 0
        ;;
esac
if ! grep -qw svm /proc/cpuinfo; then
    echo "testhost: the CPU has no svm flag"
    ok=0
fi
if [ ! -d /sys/module/kvm_amd ]; then
    echo "testhost: kvm_amd is not loaded"
    ok=0
fi
npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null)
paging="nested paging"
case "$npt" in
    Y|1) ;;
    *) if grep -qw testhost.npt=0 /proc/cmdline; then
           paging="shadow paging (--no-npt)"
       else
           echo "testhost: nested paging is off (kvm_amd npt=$npt)"; ok=0
       fi ;;
esac
dmesg | grep -i -E 'kvm|svm|nested paging' | sed 's/^/testhost: dmesg: /'
[ "$ok" = 1 ] || exit 1
echo "testhost: KVM ready (AMD-V, $paging)"

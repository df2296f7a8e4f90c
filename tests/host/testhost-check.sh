#!/bin/sh
# testhost-check (installed in the test host's /bin): is KVM usable here?
# Prints "testhost: KVM ready (AMD-V, nested paging)" and exits 0 when it is.
ok=1
if [ ! -c /dev/kvm ]; then
    echo "testhost: no /dev/kvm"
    ok=0
fi
if ! grep -qw svm /proc/cpuinfo; then
    echo "testhost: the CPU has no svm flag"
    ok=0
fi
if [ ! -d /sys/module/kvm_amd ]; then
    echo "testhost: kvm_amd is not loaded"
    ok=0
fi
npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null)
case "$npt" in
    Y|1) ;;
    *) echo "testhost: nested paging is off (kvm_amd npt=$npt)"; ok=0 ;;
esac
dmesg | grep -i -E 'kvm|svm|nested paging' | sed 's/^/testhost: dmesg: /'
[ "$ok" = 1 ] || exit 1
echo "testhost: KVM ready (AMD-V, nested paging)"

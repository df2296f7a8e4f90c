/* SPDX-License-Identifier: MIT */
/* x86_64's own seccomp rules: ioctls whose request numbers only x86's KVM
 * headers define. */
#include <linux/kvm.h>

#include "os/linux/seccomp_rules.h"
#include "utils.h"

static const struct seccomp_allow arch_rules[] = {
	/* Snapshot state (hv/kvm_x86_64_state.c), saved from and loaded into
	 * a VM held still, on the thread that owns it (main, once confined):
	 * a vCPU's registers, FPU/vector state, MSRs, local APIC, pending
	 * events, MP state and debug registers; the VM's PICs and IOAPIC and
	 * its PIT. (KVM_GET_REGS/SREGS, the clock's and KVM_RUN: seccomp.c.) */
	IOCTL(K_MAIN, KVM_SET_REGS),
	IOCTL(K_MAIN, KVM_SET_SREGS),
	IOCTL(K_MAIN, KVM_GET_XSAVE),
	IOCTL(K_MAIN, KVM_GET_XSAVE2),
	IOCTL(K_MAIN, KVM_SET_XSAVE),
	IOCTL(K_MAIN, KVM_GET_XCRS),
	IOCTL(K_MAIN, KVM_SET_XCRS),
	IOCTL(K_MAIN, KVM_GET_MSRS),
	IOCTL(K_MAIN, KVM_SET_MSRS),
	IOCTL(K_MAIN, KVM_GET_LAPIC),
	IOCTL(K_MAIN, KVM_SET_LAPIC),
	IOCTL(K_MAIN, KVM_GET_VCPU_EVENTS),
	IOCTL(K_MAIN, KVM_SET_VCPU_EVENTS),
	IOCTL(K_MAIN, KVM_GET_MP_STATE),
	IOCTL(K_MAIN, KVM_SET_MP_STATE),
	IOCTL(K_MAIN, KVM_GET_DEBUGREGS),
	IOCTL(K_MAIN, KVM_SET_DEBUGREGS),
	IOCTL(K_MAIN, KVM_GET_IRQCHIP),
	IOCTL(K_MAIN, KVM_SET_IRQCHIP),
	IOCTL(K_MAIN, KVM_GET_PIT2),
	IOCTL(K_MAIN, KVM_SET_PIT2),
};

const struct seccomp_allow *seccomp_arch_rules(size_t *n)
{
	*n = ARRAY_SIZE(arch_rules);
	return arch_rules;
}

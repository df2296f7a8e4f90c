/* SPDX-License-Identifier: MIT */
/* arm64's own seccomp rules: ioctls whose request numbers only arm64's KVM
 * headers define, or that only arm64's backend makes. */
#include <linux/kvm.h>

#include "os/linux/seccomp_rules.h"
#include "utils.h"

static const struct seccomp_allow arch_rules[] = {
	/* Snapshot state (hv/kvm_arm64_state.c), saved from and loaded into
	 * a VM held still, on the thread that owns it (main, once confined):
	 * every register KVM lists (one at a time), MP state, pending
	 * events; the vGIC's registers (device attributes); whether the host
	 * has vCPU events. (KVM_RUN: seccomp.c.) */
	IOCTL(K_MAIN, KVM_GET_REG_LIST),
	IOCTL(K_MAIN, KVM_GET_ONE_REG),
	IOCTL(K_MAIN, KVM_SET_ONE_REG),
	IOCTL(K_MAIN, KVM_GET_MP_STATE),
	IOCTL(K_MAIN, KVM_SET_MP_STATE),
	IOCTL(K_MAIN, KVM_GET_VCPU_EVENTS),
	IOCTL(K_MAIN, KVM_SET_VCPU_EVENTS),
	IOCTL(K_MAIN, KVM_GET_DEVICE_ATTR),
	IOCTL(K_MAIN, KVM_SET_DEVICE_ATTR),
	IOCTL(K_MAIN, KVM_CHECK_EXTENSION),
};

const struct seccomp_allow *seccomp_arch_rules(size_t *n)
{
	*n = ARRAY_SIZE(arch_rules);
	return arch_rules;
}

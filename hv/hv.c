/* SPDX-License-Identifier: MIT */
/* Backend selection. The Makefile links the backends this host can have. */
#include <errno.h>
#include <stddef.h>

#include "hv/backends.h"

enum hypervisor_type hypervisor_detect(void)
{
#if defined(__linux__)
	return HYPERVISOR_KVM;
#elif defined(__APPLE__) && defined(__x86_64__)
	return HYPERVISOR_HVF_X86;
#elif defined(__APPLE__) && defined(__aarch64__)
	return HYPERVISOR_HVF_ARM64;
#else
	return HYPERVISOR_UNKNOWN;
#endif
}

const struct hypervisor_ops *hypervisor_get_ops(enum hypervisor_type type)
{
	switch (type) {
#if defined(__linux__)
	case HYPERVISOR_KVM:
		return &kvm_ops;
#endif
	default:
		return NULL;
	}
}

int hypervisor_init(void)
{
	const struct hypervisor_ops *ops = hypervisor_get_ops(hypervisor_detect());

	if (!ops)
		return -ENOTSUP;
	return ops->probe();
}

void hypervisor_cleanup(void)
{
}

const char *hypervisor_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case -ENOENT:
		return "/dev/kvm not found: is KVM enabled (modprobe kvm_intel or kvm_amd)?";
	case -EACCES:
	case -EPERM:
		return "no permission to open /dev/kvm: run as root or join the kvm group";
	case -ENODEV:
		return "/dev/kvm does not support the expected KVM API";
	case -ENOTSUP:
		return "no supported hypervisor on this host";
	default:
		return "hypervisor unusable";
	}
}

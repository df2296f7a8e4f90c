/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the arm64 guest tests: a VM with RAM from 0 and vCPUs at
 * EL1h with the MMU off at the guest's first instruction; the rest
 * (loading a guest, the recording test device) is tests/guests/common.h.
 * Everything goes through the public API; the addresses are
 * arch/arm64/layout.h's, the same tests/guests/arm64/guest.inc uses.
 */
#ifndef VIBEVMM_TESTS_HARNESS_H
#define VIBEVMM_TESTS_HARNESS_H

#include "arch/arm64/layout.h"

#define GUEST_MEM (16ULL << 20)
#define GUEST_LOAD ARM64_RAW_DEFAULT_ADDR
#define STACK_TOP 0x20000ULL
/* A free stretch of the MMIO window, between the platform devices and the
 * virtio slots: the tests' own device. */
#define TESTDEV_MMIO 0xc0000000ULL
_Static_assert(TESTDEV_MMIO > ARM64_RTC_ADDR + ARM64_RTC_SIZE &&
	       TESTDEV_MMIO + 0x2000 <= ARM64_VIRTIO_MMIO_BASE,
	       "the test device overlaps the machine's devices");

#include "guests/common.h"

static inline struct vm *new_vm(void)
{
	struct vm *vm = vm_create();

	if (!vm)
		fail_msg("vm_create: %s", strerror(errno));
	vm->log_level = LOG_ERROR;
	assert_int_equal(vm_alloc_memory(vm, ARM64_RAM_BASE, GUEST_MEM), 0);
	return vm;
}

/* vCPU `id` at the guest's first instruction, X0 = id, its own stack. The
 * hypervisor keeps vCPUs other than 0 powered off until PSCI CPU_ON. */
static inline struct vcpu *new_vcpu(struct vm *vm, int id)
{
	struct vcpu *vcpu = vm_create_vcpu(vm, id);
	struct regs regs;

	assert_non_null(vcpu);
	assert_int_equal(vcpu_get_regs(vcpu, &regs), 0);
	memset(regs.x, 0, sizeof(regs.x));
	regs.x[0] = (uint64_t)id;
	regs.pc = GUEST_LOAD;
	regs.sp = STACK_TOP - (uint64_t)id * 0x400;
	regs.pstate = ARM64_PSTATE_EL1H_DAIF;
	assert_int_equal(vcpu_set_regs(vcpu, &regs), 0);
	return vcpu;
}

#endif

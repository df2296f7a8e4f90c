/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the x86_64 guest tests: a VM with RAM and boot tables, a
 * vCPU in long mode at the guest; the rest (loading a guest, the recording
 * test device) is tests/guests/common.h. Everything goes through the
 * public API.
 */
#ifndef VIBEVMM_TESTS_HARNESS_H
#define VIBEVMM_TESTS_HARNESS_H

#define GUEST_MEM (16ULL << 20)
#define GUEST_LOAD 0x100000ULL
#define TESTDEV_MMIO 0xc0000000ULL
#define TESTDEV_PORT 0x510
#define STACK_TOP 0x20000ULL

#include "guests/common.h"

static inline struct vm *new_vm(void)
{
	struct vm *vm = vm_create();

	if (!vm)
		fail_msg("vm_create: %s", strerror(errno));
	vm->log_level = LOG_ERROR;
	assert_int_equal(vm_alloc_memory(vm, 0, GUEST_MEM), 0);
	assert_int_equal(x86_setup_boot_tables(vm), 0);
	return vm;
}

/* A vCPU in long mode at the guest's first byte. */
static inline struct vcpu *new_vcpu_long_mode(struct vm *vm, int id)
{
	struct vcpu *vcpu = vm_create_vcpu(vm, id);
	struct regs regs;

	assert_non_null(vcpu);
	assert_int_equal(vcpu_get_regs(vcpu, &regs), 0);
	x86_regs_long_mode(&regs, GUEST_LOAD, STACK_TOP - (uint64_t)id * 0x400);
	regs.rdi = (uint64_t)id;
	assert_int_equal(vcpu_set_regs(vcpu, &regs), 0);
	return vcpu;
}

#endif

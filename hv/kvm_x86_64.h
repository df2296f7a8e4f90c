/* SPDX-License-Identifier: MIT */
/* KVM x86_64 internals shared by kvm_x86_64.c, kvm_x86_64_state.c and
 * their tests. */
#ifndef VIBEVMM_HV_KVM_X86_64_H
#define VIBEVMM_HV_KVM_X86_64_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "hv/kvm.h"

/* The VM's x86 data (kvm_vm.arch). */
struct kvm_x86_vm {
	struct kvm_cpuid2 *cpuid; /* what KVM supports; patched per vCPU */
	bool irqchip;             /* in-kernel LAPIC/IOAPIC/PIC created */
	/* kvmclock when the VM was paused, set back at resume. */
	uint64_t paused_clock;
	bool clock_saved;
	/* For the snapshot state (kvm_x86_64_state.c), asked once at
	 * creation, before any sandbox: */
	struct kvm_msr_list *msr_list; /* KVM_GET_MSR_INDEX_LIST; NULL: msr_list_err */
	int msr_list_err;
	uint32_t xsave_size;           /* bytes of the vCPUs' XSAVE area */
	bool xsave2;                   /* KVM_GET_XSAVE2 reads it (else KVM_GET_XSAVE) */
	bool xcrs;                     /* KVM_CAP_XCRS: the host has XSAVE */
};

static inline struct kvm_x86_vm *kvm_x86_of(struct vm *vm)
{
	return ((struct kvm_vm *)vm->private)->arch;
}

/*
 * Patch a copy of KVM's supported CPUID for one vCPU: its APIC id, the
 * hypervisor bit and, with tsc_khz, the timing leaf 0x40000010 (EAX: TSC
 * kHz, EBX: local APIC timer kHz) that hypervisors of VMware's convention
 * offer, so a guest knows the TSC rate without calibrating. c needs room
 * for one entry more than c->nent. Pure: unit-tested.
 */
void kvm_x86_patch_cpuid(struct kvm_cpuid2 *c, uint32_t apic_id, uint32_t tsc_khz);

/*
 * The snapshot state payloads (kvm_x86_64_state.c): items back to back,
 * each a u32 id (below; the numbers are the format, never reuse one), a
 * u32 byte length and the kernel's struct as the KVM_GET_* ioctl filled
 * it (x86_64 KVM only: the snapshot file is arch-tagged). MSRS is a u32
 * count and count (u32 index, u64 value) pairs.
 */
enum kvm_x86_state_item {
	/* a vCPU's, in the order they are saved */
	KVM_X86_ITEM_REGS = 1,         /* struct kvm_regs */
	KVM_X86_ITEM_SREGS = 2,        /* struct kvm_sregs */
	KVM_X86_ITEM_XSAVE = 3,        /* struct kvm_xsave, xsave_size bytes */
	KVM_X86_ITEM_XCRS = 4,         /* struct kvm_xcrs; only where KVM_CAP_XCRS */
	KVM_X86_ITEM_MSRS = 5,
	KVM_X86_ITEM_LAPIC = 6,        /* struct kvm_lapic_state; only with the irqchip */
	KVM_X86_ITEM_EVENTS = 7,       /* struct kvm_vcpu_events */
	KVM_X86_ITEM_MP_STATE = 8,     /* struct kvm_mp_state */
	KVM_X86_ITEM_DEBUGREGS = 9,    /* struct kvm_debugregs */
	/* the VM's; the first four only with the irqchip */
	KVM_X86_ITEM_PIC_MASTER = 16,  /* struct kvm_irqchip, chip_id 0 */
	KVM_X86_ITEM_PIC_SLAVE = 17,   /* chip_id 1 */
	KVM_X86_ITEM_IOAPIC = 18,      /* chip_id 2 */
	KVM_X86_ITEM_PIT = 19,         /* struct kvm_pit_state2 */
	KVM_X86_ITEM_CLOCK = 20,       /* struct kvm_clock_data */
};

/* At most this many MSRs in a payload (KVM's list has well under 300). */
#define KVM_X86_STATE_MAX_MSRS 1024

/* What the state code needs from the host, once per VM (kvm_arch_vm_init);
 * freed by kvm_x86_state_vm_destroy. */
int kvm_x86_state_vm_init(struct vm *vm);
void kvm_x86_state_vm_destroy(struct vm *vm);

#endif

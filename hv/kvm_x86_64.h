/* SPDX-License-Identifier: MIT */
/* KVM x86_64 internals shared with their unit tests. */
#ifndef VIBEVMM_HV_KVM_X86_64_H
#define VIBEVMM_HV_KVM_X86_64_H

#include <stdint.h>
#include <linux/kvm.h>

/*
 * Patch a copy of KVM's supported CPUID for one vCPU: its APIC id, the
 * hypervisor bit and, with tsc_khz, the timing leaf 0x40000010 (EAX: TSC
 * kHz, EBX: local APIC timer kHz) that hypervisors of VMware's convention
 * offer, so a guest knows the TSC rate without calibrating. c needs room
 * for one entry more than c->nent. Pure: unit-tested.
 */
void kvm_x86_patch_cpuid(struct kvm_cpuid2 *c, uint32_t apic_id, uint32_t tsc_khz);

#endif

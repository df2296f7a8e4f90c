/* SPDX-License-Identifier: MIT */
/* Linux KVM backend: x86_64 specifics (VM set-up, CPUID, registers). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86_64/layout.h"
#include "hv/kvm.h"
#include "hv/kvm_x86_64.h"
#include "utils.h"

#define CPUID_MAX_ENTRIES 256

/* Local APIC register offsets and LVT delivery modes. */
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_EXTINT 0x7
#define APIC_MODE_NMI 0x4

static struct kvm_cpuid2 *alloc_cpuid(int nent)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)nent * sizeof(c->entries[0]));

	if (c)
		c->nent = (uint32_t)nent;
	return c;
}

int kvm_arch_vm_type(int sys_fd)
{
	return 0;
}

uint32_t kvm_arch_irq_line_number(uint32_t line)
{
	return line;
}

int kvm_arch_vm_finalize(struct vm *vm)
{
	return 0;
}

int kvm_arch_irqfd_later(struct vm *vm, uint32_t gsi, int fd)
{
	return -EAGAIN;
}

int kvm_arch_irqchip_model(struct vm *vm)
{
	return ((struct kvm_x86_vm *)kvm_of(vm)->arch)->irqchip ? IRQCHIP_X86 : IRQCHIP_NONE;
}

int kvm_arch_vm_init(struct vm *vm)
{
	struct kvm_vm *k = kvm_of(vm);
	struct kvm_x86_vm *x = calloc(1, sizeof(*x));
	uint64_t ident = X86_IDENTITY_MAP_ADDR;
	int err;

	if (!x)
		return -ENOMEM;
	k->arch = x;
	/* Intel needs these pages for real-mode emulation; harmless elsewhere
	 * (older or emulated hosts may not implement them). */
	kvm_ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident);
	kvm_ioctl(k->vm_fd, KVM_SET_TSS_ADDR, (void *)(uintptr_t)X86_TSS_ADDR);

	x->cpuid = alloc_cpuid(CPUID_MAX_ENTRIES);
	if (!x->cpuid)
		return -ENOMEM;
	err = kvm_ioctl(k->sys_fd, KVM_GET_SUPPORTED_CPUID, x->cpuid);
	if (err < 0)
		return err;
	return kvm_x86_state_vm_init(vm);
}

void kvm_arch_vm_destroy(struct vm *vm)
{
	struct kvm_x86_vm *x = kvm_of(vm)->arch;

	if (!x)
		return;
	kvm_x86_state_vm_destroy(vm);
	free(x->cpuid);
	free(x);
	kvm_of(vm)->arch = NULL;
}

int kvm_arch_create_irqchip(struct vm *vm)
{
	struct kvm_vm *k = kvm_of(vm);
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	int err;

	if (vm->num_vcpus)
		return -EBUSY; /* x86 KVM: the irqchip comes before any vCPU */
	err = kvm_ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, NULL);
	if (err < 0)
		return err;
	err = kvm_ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit);
	if (err < 0)
		return err;
	((struct kvm_x86_vm *)k->arch)->irqchip = true;
	return 0;
}

#define KVM_CPUID_SIGNATURE 0x40000000
#define CPUID_TIMING_LEAF 0x40000010
/* KVM's local APIC timer counts at 1 GHz (one tick per ns). */
#define KVM_APIC_BUS_KHZ 1000000

static struct kvm_cpuid_entry2 *find_leaf(struct kvm_cpuid2 *c, uint32_t function)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == function)
			return &c->entries[i];
	return NULL;
}

/* The timing leaf, when KVM's signature leaf is there to announce it. */
static void add_timing_leaf(struct kvm_cpuid2 *c, uint32_t tsc_khz)
{
	struct kvm_cpuid_entry2 *sig = find_leaf(c, KVM_CPUID_SIGNATURE);
	struct kvm_cpuid_entry2 *t = find_leaf(c, CPUID_TIMING_LEAF);

	if (!sig || !tsc_khz)
		return;
	if (!t) {
		t = &c->entries[c->nent++];
		*t = (struct kvm_cpuid_entry2){ .function = CPUID_TIMING_LEAF };
	}
	t->eax = tsc_khz;
	t->ebx = KVM_APIC_BUS_KHZ;
	t->ecx = t->edx = 0;
	if (sig->eax < CPUID_TIMING_LEAF)
		sig->eax = CPUID_TIMING_LEAF;
}

void kvm_x86_patch_cpuid(struct kvm_cpuid2 *c, uint32_t apic_id, uint32_t tsc_khz)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x00ffffffu) | (apic_id << 24);
			/* "Running under a hypervisor": without it Linux never
			 * looks at KVM's leaves (kvm-clock, PV features). */
			e->ecx |= 1u << 31;
			break;
		case 0xb:
		case 0x1f:
			e->edx = apic_id;
			break;
		}
	}
	add_timing_leaf(c, tsc_khz);
}

static int set_cpuid(struct vcpu *vcpu)
{
	struct kvm_x86_vm *x = kvm_of(vcpu->vm)->arch;
	int fd = kvm_vcpu_of(vcpu)->fd;
	size_t bytes = sizeof(*x->cpuid) + x->cpuid->nent * sizeof(x->cpuid->entries[0]);
	/* room for the timing leaf */
	struct kvm_cpuid2 *c = malloc(bytes + sizeof(x->cpuid->entries[0]));
	/* The vCPU's TSC rate (the host's unless scaled); 0 where the
	 * ioctl is missing: then no timing leaf. */
	int khz = kvm_ioctl(fd, KVM_GET_TSC_KHZ, NULL);
	int err;

	if (!c)
		return -ENOMEM;
	memcpy(c, x->cpuid, bytes);
	kvm_x86_patch_cpuid(c, (uint32_t)vcpu->vcpu_id, khz > 0 ? (uint32_t)khz : 0);
	err = kvm_ioctl(fd, KVM_SET_CPUID2, c);
	free(c);
	return err < 0 ? err : 0;
}

static int set_fpu(struct vcpu *vcpu)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	int err = kvm_ioctl(kvm_vcpu_of(vcpu)->fd, KVM_SET_FPU, &fpu);

	return err < 0 ? err : 0;
}

static void set_lvt_mode(struct kvm_lapic_state *l, int reg, uint32_t mode)
{
	uint32_t v;

	memcpy(&v, &l->regs[reg], 4);
	v = (v & ~0x700u) | (mode << 8);
	memcpy(&l->regs[reg], &v, 4);
}

/* Wire LINT0 to the PIC (ExtINT) and LINT1 to NMI, as firmware does, so
 * the kernel's legacy interrupt routing works before it reprograms them. */
static int set_lapic_lints(struct vcpu *vcpu)
{
	struct kvm_lapic_state l;
	int fd = kvm_vcpu_of(vcpu)->fd;
	int err = kvm_ioctl(fd, KVM_GET_LAPIC, &l);

	if (err < 0)
		return err;
	set_lvt_mode(&l, APIC_LVT0, APIC_MODE_EXTINT);
	set_lvt_mode(&l, APIC_LVT1, APIC_MODE_NMI);
	err = kvm_ioctl(fd, KVM_SET_LAPIC, &l);
	return err < 0 ? err : 0;
}

/* XCR0 bits the CPUID table offers (leaf 0xD, sub-leaf 0: EDX:EAX). */
static uint64_t supported_xcr0(const struct kvm_cpuid2 *c)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0xd && c->entries[i].index == 0)
			return c->entries[i].eax | ((uint64_t)c->entries[i].edx << 32);
	return 0;
}

/*
 * CPUID.(0xD,0).EBX is the XSAVE area size for the current XCR0. KVM computes
 * it when CPUID is set and recomputes it on XSETBV only when bits beyond
 * x87/SSE/AVX change. On a host offering just those (e.g. an emulated EPYC),
 * a guest that turns AVX on keeps seeing the x87/SSE size, sizes its XSAVE
 * buffers too small and corrupts memory. So: start the vCPU with every
 * offered XCR0 bit on, then set CPUID again so the size matches.
 */
static int sync_xsave_size(struct vcpu *vcpu)
{
	struct kvm_x86_vm *x = kvm_of(vcpu->vm)->arch;
	uint64_t xcr0 = supported_xcr0(x->cpuid);
	struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs = { { .xcr = 0, .value = xcr0 } } };

	if (xcr0 <= 1)
		return 0; /* no XSAVE: nothing to size */
	if (kvm_ioctl(kvm_vcpu_of(vcpu)->fd, KVM_SET_XCRS, &xcrs) < 0)
		return 0; /* not fatal: the guest may still run without AVX */
	return set_cpuid(vcpu);
}

int kvm_arch_vcpu_init(struct vcpu *vcpu)
{
	struct kvm_x86_vm *x = kvm_of(vcpu->vm)->arch;
	int err = set_cpuid(vcpu);

	if (!err)
		err = sync_xsave_size(vcpu);
	if (!err)
		err = set_fpu(vcpu);
	if (!err && x->irqchip)
		err = set_lapic_lints(vcpu);
	return err;
}

static void seg_from_kvm(struct x86_segment *s, const struct kvm_segment *k)
{
	*s = (struct x86_segment){
		.base = k->base, .limit = k->limit, .selector = k->selector,
		.type = k->type, .present = k->present, .dpl = k->dpl, .db = k->db,
		.s = k->s, .l = k->l, .g = k->g, .avl = k->avl,
		.unusable = k->unusable,
	};
}

static void seg_to_kvm(struct kvm_segment *k, const struct x86_segment *s)
{
	*k = (struct kvm_segment){
		.base = s->base, .limit = s->limit, .selector = s->selector,
		.type = s->type, .present = s->present, .dpl = s->dpl, .db = s->db,
		.s = s->s, .l = s->l, .g = s->g, .avl = s->avl,
		.unusable = s->unusable,
	};
}

int kvm_arch_get_regs(struct vcpu *vcpu, struct regs *r)
{
	int fd = kvm_vcpu_of(vcpu)->fd;
	struct kvm_regs kr;
	struct kvm_sregs ks;
	int err;

	err = kvm_ioctl(fd, KVM_GET_REGS, &kr);
	if (err < 0)
		return err;
	err = kvm_ioctl(fd, KVM_GET_SREGS, &ks);
	if (err < 0)
		return err;
	*r = (struct regs){
		.rax = kr.rax, .rbx = kr.rbx, .rcx = kr.rcx, .rdx = kr.rdx,
		.rsi = kr.rsi, .rdi = kr.rdi, .rsp = kr.rsp, .rbp = kr.rbp,
		.r8 = kr.r8, .r9 = kr.r9, .r10 = kr.r10, .r11 = kr.r11,
		.r12 = kr.r12, .r13 = kr.r13, .r14 = kr.r14, .r15 = kr.r15,
		.rip = kr.rip, .rflags = kr.rflags,
		.gdt = { ks.gdt.base, ks.gdt.limit },
		.idt = { ks.idt.base, ks.idt.limit },
		.cr0 = ks.cr0, .cr2 = ks.cr2, .cr3 = ks.cr3, .cr4 = ks.cr4,
		.cr8 = ks.cr8, .efer = ks.efer, .apic_base = ks.apic_base,
	};
	seg_from_kvm(&r->cs, &ks.cs);
	seg_from_kvm(&r->ds, &ks.ds);
	seg_from_kvm(&r->es, &ks.es);
	seg_from_kvm(&r->fs, &ks.fs);
	seg_from_kvm(&r->gs, &ks.gs);
	seg_from_kvm(&r->ss, &ks.ss);
	seg_from_kvm(&r->tr, &ks.tr);
	seg_from_kvm(&r->ldt, &ks.ldt);
	return 0;
}

int kvm_arch_set_regs(struct vcpu *vcpu, const struct regs *r)
{
	int fd = kvm_vcpu_of(vcpu)->fd;
	struct kvm_regs kr = {
		.rax = r->rax, .rbx = r->rbx, .rcx = r->rcx, .rdx = r->rdx,
		.rsi = r->rsi, .rdi = r->rdi, .rsp = r->rsp, .rbp = r->rbp,
		.r8 = r->r8, .r9 = r->r9, .r10 = r->r10, .r11 = r->r11,
		.r12 = r->r12, .r13 = r->r13, .r14 = r->r14, .r15 = r->r15,
		.rip = r->rip, .rflags = r->rflags | X86_RFLAGS_RESERVED,
	};
	struct kvm_sregs ks;
	int err;

	/* Start from KVM's view so fields struct regs does not carry (the
	 * pending-interrupt bitmap) keep their values. */
	err = kvm_ioctl(fd, KVM_GET_SREGS, &ks);
	if (err < 0)
		return err;
	seg_to_kvm(&ks.cs, &r->cs);
	seg_to_kvm(&ks.ds, &r->ds);
	seg_to_kvm(&ks.es, &r->es);
	seg_to_kvm(&ks.fs, &r->fs);
	seg_to_kvm(&ks.gs, &r->gs);
	seg_to_kvm(&ks.ss, &r->ss);
	seg_to_kvm(&ks.tr, &r->tr);
	seg_to_kvm(&ks.ldt, &r->ldt);
	ks.gdt.base = r->gdt.base;
	ks.gdt.limit = r->gdt.limit;
	ks.idt.base = r->idt.base;
	ks.idt.limit = r->idt.limit;
	ks.cr0 = r->cr0;
	ks.cr2 = r->cr2;
	ks.cr3 = r->cr3;
	ks.cr4 = r->cr4;
	ks.cr8 = r->cr8;
	ks.efer = r->efer;
	if (r->apic_base)
		ks.apic_base = r->apic_base;
	err = kvm_ioctl(fd, KVM_SET_SREGS, &ks);
	if (err < 0)
		return err;
	err = kvm_ioctl(fd, KVM_SET_REGS, &kr);
	return err < 0 ? err : 0;
}

/* The guest's pvclock page gets PVCLOCK_GUEST_STOPPED at its next entry:
 * Linux's soft-lockup and RCU stall detectors then take the gap for a
 * pause, not a hang. */
int kvm_arch_vcpu_pause_notify(struct vcpu *vcpu)
{
	int err = kvm_ioctl(kvm_vcpu_of(vcpu)->fd, KVM_KVMCLOCK_CTRL, NULL);

	/* EINVAL: the guest never enabled kvmclock; nobody to tell. */
	return err == -EINVAL ? 0 : err < 0 ? err : 0;
}

int kvm_arch_clock_save(struct vm *vm)
{
	struct kvm_x86_vm *x = kvm_of(vm)->arch;
	struct kvm_clock_data data = { 0 };
	int err = kvm_ioctl(kvm_of(vm)->vm_fd, KVM_GET_CLOCK, &data);

	if (err < 0)
		return err;
	x->paused_clock = data.clock;
	x->clock_saved = true;
	return 0;
}

/* The clock as it was at the pause: the guest's time goes on from there
 * (flags 0: no KVM_CLOCK_REALTIME, which would add the paused time). */
int kvm_arch_clock_restore(struct vm *vm)
{
	struct kvm_x86_vm *x = kvm_of(vm)->arch;
	struct kvm_clock_data data = { .clock = x->paused_clock };
	int err;

	if (!x->clock_saved)
		return 0;
	x->clock_saved = false;
	err = kvm_ioctl(kvm_of(vm)->vm_fd, KVM_SET_CLOCK, &data);
	return err < 0 ? err : 0;
}

int kvm_arch_decode_exit(struct vcpu *vcpu, struct vcpu_exit *exit)
{
	return -ENOENT;
}

void kvm_arch_fetch_insn(struct vcpu *vcpu, struct vcpu_exit *exit)
{
	struct kvm_regs kr;
	struct kvm_translation tr = { 0 };
	int fd = kvm_vcpu_of(vcpu)->fd;
	size_t n = sizeof(exit->internal.insn) - 1; /* x86: at most 15 bytes */

	if (kvm_ioctl(fd, KVM_GET_REGS, &kr) < 0)
		return;
	tr.linear_address = kr.rip;
	if (kvm_ioctl(fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
		return;
	/* Stay within the page: the next one may map elsewhere. */
	n = MIN(n, 4096 - (tr.physical_address & 4095));
	if (vm_read_guest(vcpu->vm, tr.physical_address, exit->internal.insn, n) == 0)
		exit->internal.insn_len = (uint8_t)n;
}

/* MSI routes (kvm_msi.c): KVM_CREATE_IRQCHIP's routes, kept when the table
 * is replaced: GSIs 0-15 on both the IOAPIC's pin and the PICs' (master
 * 0-7, slave 8-15), 16-23 on the IOAPIC alone; MSI GSIs after them. */
#define X86_PIC_GSIS 16
#define X86_IOAPIC_GSIS 24

static void irqchip_route(struct kvm_irq_routing_entry *e, uint32_t gsi, uint32_t chip,
			  uint32_t pin)
{
	*e = (struct kvm_irq_routing_entry){
		.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
		.u.irqchip = { .irqchip = chip, .pin = pin },
	};
}

int kvm_arch_default_routes(struct vm *vm, struct kvm_irq_routing_entry *e, int max)
{
	int n = 0;

	if (!((struct kvm_x86_vm *)kvm_of(vm)->arch)->irqchip)
		return -ENODEV; /* MSIs go to the in-kernel LAPICs */
	if (max < X86_PIC_GSIS + X86_IOAPIC_GSIS)
		return -ENOSPC;
	for (uint32_t gsi = 0; gsi < X86_IOAPIC_GSIS; gsi++) {
		irqchip_route(&e[n++], gsi, KVM_IRQCHIP_IOAPIC, gsi);
		if (gsi < X86_PIC_GSIS)
			irqchip_route(&e[n++], gsi,
				      gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
				      gsi % 8);
	}
	return n;
}

uint32_t kvm_arch_msi_gsi_base(void)
{
	return X86_IOAPIC_GSIS;
}

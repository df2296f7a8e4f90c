/* SPDX-License-Identifier: MIT */
/* KVM backend internals shared by kvm.c and kvm_<arch>.c. */
#ifndef VIBEVMM_HV_KVM_H
#define VIBEVMM_HV_KVM_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "vm.h"

struct kvm_vm {
	int sys_fd;        /* /dev/kvm */
	int vm_fd;
	int run_size;      /* mmap size of struct kvm_run */
	void *arch;        /* kvm_<arch>.c's data */
	struct kvm_msi_routes *msi; /* kvm_msi.c's table, made on first use */
};

struct kvm_vcpu {
	int fd;
	struct kvm_run *run;
};

static inline struct kvm_vm *kvm_of(struct vm *vm)
{
	return vm->private;
}

static inline struct kvm_vcpu *kvm_vcpu_of(struct vcpu *vcpu)
{
	return vcpu->private;
}

/* ioctl that retries on EINTR where that is safe; returns -errno. */
int kvm_ioctl(int fd, unsigned long req, void *arg);

/* Arch hooks, implemented by kvm_<arch>.c. */
/* The KVM_CREATE_VM type (arm64: the IPA size the layout needs). */
int kvm_arch_vm_type(int sys_fd);
int kvm_arch_vm_init(struct vm *vm);
/* Once every vCPU exists, before the first KVM_RUN (hypervisor_ops.vm_finalize). */
int kvm_arch_vm_finalize(struct vm *vm);
int kvm_arch_irqchip_model(struct vm *vm);
/* KVM_IRQ_LINE's irq field for an interrupt line (x86: the GSI; arm64: an
 * SPI, encoded with its type). irqfd takes the line number as it is. */
uint32_t kvm_arch_irq_line_number(uint32_t line);
/* An irqfd the arch must register later (arm64: only once the vGIC is
 * initialised): 0 when it took it, -EAGAIN to register it now. */
int kvm_arch_irqfd_later(struct vm *vm, uint32_t gsi, int fd);
/* MSI routes (kvm_msi.c; hypervisor_ops.msi_route). The arch gives its
 * default routes (at most KVM_ARCH_DEFAULT_ROUTES; x86: the PIC and
 * IOAPIC pins; the count written, or -EOPNOTSUPP where the arch has no
 * MSI routes yet) and the first GSI MSI routes may use. */
int kvm_msi_route(struct vm *vm, uint32_t gsi, bool usable, uint64_t addr, uint32_t data);
void kvm_msi_routes_free(struct vm *vm);
#define KVM_ARCH_DEFAULT_ROUTES 48
int kvm_arch_default_routes(struct vm *vm, struct kvm_irq_routing_entry *e, int max);
uint32_t kvm_arch_msi_gsi_base(void);
/* KVM_IRQFD itself. */
int kvm_irqfd_now(struct vm *vm, uint32_t gsi, int fd);
void kvm_arch_vm_destroy(struct vm *vm);
int kvm_arch_create_irqchip(struct vm *vm);
int kvm_arch_vcpu_init(struct vcpu *vcpu);
int kvm_arch_get_regs(struct vcpu *vcpu, struct regs *regs);
int kvm_arch_set_regs(struct vcpu *vcpu, const struct regs *regs);
/* The guest clock across a pause (hypervisor_ops.vcpu_pause_notify,
 * clock_save, clock_restore); arm64: nothing to do, each returns 0. */
int kvm_arch_vcpu_pause_notify(struct vcpu *vcpu);
int kvm_arch_clock_save(struct vm *vm);
int kvm_arch_clock_restore(struct vm *vm);
/* Snapshot state (hypervisor_ops.vcpu_state_save, vcpu_state_load,
 * vm_state_save, vm_state_load): kvm_x86_64_state.c, kvm_arm64_state.c. */
int kvm_arch_vcpu_state_save(struct vcpu *vcpu, struct snap_buf *out);
int kvm_arch_vcpu_state_load(struct vcpu *vcpu, struct snap_cursor *in);
int kvm_arch_vm_state_save(struct vm *vm, struct snap_buf *out);
int kvm_arch_vm_state_load(struct vm *vm, struct snap_cursor *in);
/* Decode arch-specific exits; return 0 if handled, -ENOENT if unknown. */
int kvm_arch_decode_exit(struct vcpu *vcpu, struct vcpu_exit *exit);
/* Fill exit->internal.insn from guest memory when KVM did not. */
void kvm_arch_fetch_insn(struct vcpu *vcpu, struct vcpu_exit *exit);

#endif

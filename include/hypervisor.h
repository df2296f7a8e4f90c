/* SPDX-License-Identifier: MIT */
/*
 * Hypervisor abstraction: platform detection and the operations table that
 * each backend (KVM, Hypervisor.framework) implements. The core calls the
 * backend only through struct hypervisor_ops; nothing above hv/ includes a
 * backend header.
 */
#ifndef VIBEVMM_HYPERVISOR_H
#define VIBEVMM_HYPERVISOR_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

enum hypervisor_type {
	HYPERVISOR_UNKNOWN,
	HYPERVISOR_KVM,       /* Linux KVM */
	HYPERVISOR_HVF_X86,   /* macOS Hypervisor.framework (x86_64) */
	HYPERVISOR_HVF_ARM64, /* macOS Hypervisor.framework (ARM64) */
};

struct vm;
struct vcpu;
struct vcpu_exit;
struct regs;
struct snap_buf;    /* core/snapfile.h: snapshot payloads, library-internal */
struct snap_cursor;

/*
 * What a backend provides. Every function returns 0 or a negative errno
 * unless noted. vcpu_run enters the guest once and decodes the exit into the
 * backend-neutral struct vcpu_exit; for I/O exits, exit->io.data /
 * exit->mmio.data point at a buffer the backend hands back to the guest on
 * the next entry, so the core completes a read by writing into it.
 */
struct hypervisor_ops {
	const char *name;
	enum hypervisor_type type;

	int (*probe)(void); /* usable here? 0, -ENOENT, -EACCES, -ENODEV... */

	int (*vm_create)(struct vm *vm);
	void (*vm_destroy)(struct vm *vm);
	/* Slot `slot` maps [gpa, gpa + size) to hva; size 0 removes the
	 * slot. Slots from MM_MAX_SLOTS on are device memory, changed while
	 * vCPUs run (devmem.c). */
	int (*set_memory)(struct vm *vm, uint32_t slot, uint64_t gpa,
			  void *hva, uint64_t size);
	int (*create_irqchip)(struct vm *vm); /* in-kernel interrupt controller */
	int (*irqchip_model)(struct vm *vm);  /* enum irqchip_model of it */
	/* Optional: the last set-up step, once every vCPU exists and before
	 * the first vcpu_run (arm64: the vGIC is initialised after its vCPUs). */
	int (*vm_finalize)(struct vm *vm);
	int (*irq_line)(struct vm *vm, uint32_t gsi, int level);
	/* Optional fast paths; NULL or -ENOTSUP when the backend has none. */
	int (*ioeventfd)(struct vm *vm, uint64_t addr, uint32_t len, int pio,
			 int fd, int datamatch, uint64_t value);
	int (*ioeventfd_del)(struct vm *vm, uint64_t addr, uint32_t len, int pio,
			     int fd, int datamatch, uint64_t value);
	int (*irqfd)(struct vm *vm, uint32_t gsi, int fd);
	/* Optional: GSI `gsi` (the arch's MSI range) delivers the message
	 * (addr, data), or nothing (usable false), from now on; with an
	 * irqfd on the GSI that is a PCI function's MSI-X vector. */
	int (*msi_route)(struct vm *vm, uint32_t gsi, bool usable, uint64_t addr, uint32_t data);

	int (*vcpu_create)(struct vcpu *vcpu);
	void (*vcpu_destroy)(struct vcpu *vcpu);
	int (*vcpu_run)(struct vcpu *vcpu, struct vcpu_exit *exit);
	/* Make a running or about-to-run vcpu_run return promptly. */
	void (*vcpu_kick)(struct vcpu *vcpu);
	/*
	 * Optional, the guest clock across vm_pause/vm_resume (NULL: nothing
	 * to do). All are called with every vCPU parked outside vcpu_run. At
	 * pause, vcpu_pause_notify on each vCPU (tell the guest it was
	 * stopped, so its watchdogs make allowance; x86 KVM:
	 * KVM_KVMCLOCK_CTRL, -EINVAL when the guest has no kvmclock, which
	 * is fine), then clock_save (remember the guest clock; KVM:
	 * KVM_GET_CLOCK). At resume, clock_restore before any vCPU runs (put
	 * it back, so the guest does not see the paused time pass; KVM:
	 * KVM_SET_CLOCK). arm64 KVM: each does nothing (the guest's virtual
	 * counter runs on while paused).
	 */
	int (*vcpu_pause_notify)(struct vcpu *vcpu);
	int (*clock_save)(struct vm *vm);
	int (*clock_restore)(struct vm *vm);
	int (*vcpu_get_regs)(struct vcpu *vcpu, struct regs *regs);
	int (*vcpu_set_regs)(struct vcpu *vcpu, const struct regs *regs);
	/*
	 * Optional, for snapshots (NULL: the core says -EOPNOTSUPP). Called
	 * with no vCPU in the guest (the VM paused, not started or ended).
	 * vcpu_state_save appends the vCPU's CPU and local interrupt state
	 * to out, vm_state_save the VM-wide part (x86: the in-kernel PIC,
	 * IOAPIC and PIT, the guest clock); the payload's format is the
	 * backend's and only it reads it back. The loads take such a payload
	 * (the whole of `in`) into a VM of the same shape (RAM, irqchip,
	 * vCPUs) and check all of it before changing anything: -EINVAL, and
	 * nothing changed, for one that is malformed.
	 */
	int (*vcpu_state_save)(struct vcpu *vcpu, struct snap_buf *out);
	int (*vcpu_state_load)(struct vcpu *vcpu, struct snap_cursor *in);
	int (*vm_state_save)(struct vm *vm, struct snap_buf *out);
	int (*vm_state_load)(struct vm *vm, struct snap_cursor *in);
};

/* The backend this host supports, or HYPERVISOR_UNKNOWN. */
enum hypervisor_type hypervisor_detect(void);

/* The operations table for a backend, or NULL when not built in. */
const struct hypervisor_ops *hypervisor_get_ops(enum hypervisor_type type);

/*
 * Check that the detected hypervisor is usable by this process (for KVM:
 * /dev/kvm opens and speaks API version 12). Keeps no state: every VM opens
 * its own handles. 0, or -ENOENT (missing), -EACCES (no permission),
 * -ENODEV/-ENOTSUP (unusable).
 */
int hypervisor_init(void);

/* Counterpart of hypervisor_init; nothing to release today. */
void hypervisor_cleanup(void);

/* Human-readable reason for a hypervisor_init() failure. */
const char *hypervisor_strerror(int err);

#endif

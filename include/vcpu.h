/* SPDX-License-Identifier: MIT */
/* vCPU creation, execution, register access and exit reasons. */
#ifndef VIBEVMM_VCPU_H
#define VIBEVMM_VCPU_H

#include <stdint.h>

#include "hypervisor.h"
#if defined(__x86_64__)
#include "arch_x86_64.h"
#elif defined(__aarch64__)
#include "arch_arm64.h"
#else
#error "unsupported host architecture"
#endif

/* Positive return values of vcpu_run(): why the guest stopped. */
enum vcpu_exit_reason {
	VCPU_EXIT_NONE = 0,
	VCPU_EXIT_IO,             /* port I/O, already dispatched to a device */
	VCPU_EXIT_MMIO,           /* MMIO, already dispatched to a device */
	VCPU_EXIT_HLT,            /* HLT (without an in-kernel irqchip) */
	VCPU_EXIT_SHUTDOWN,       /* triple fault */
	VCPU_EXIT_GUEST_EXIT,     /* guest wrote the exit port; see exit->status */
	VCPU_EXIT_POWEROFF,       /* guest powered off (ACPI S5, PSCI) */
	VCPU_EXIT_RESET,          /* guest asked for a reboot */
	VCPU_EXIT_INTERNAL_ERROR, /* hypervisor could not run/emulate the guest */
	VCPU_EXIT_FAIL_ENTRY,     /* hardware refused to enter the guest */
	VCPU_EXIT_STOPPED,        /* vm_stop() was called */
	VCPU_EXIT_INTERRUPTED,    /* a signal interrupted the run; just call again */
	VCPU_EXIT_UNKNOWN,        /* an exit the library does not handle */
	VCPU_EXIT_PANIC,          /* the guest reported a kernel panic (pvpanic) */
};
#define VCPU_EXIT_REASONS (VCPU_EXIT_PANIC + 1)

/* Details of the last exit, valid until the next vcpu_run(). */
struct vcpu_exit {
	enum vcpu_exit_reason reason;
	int status; /* GUEST_EXIT: the value written to the exit port */
	union {
		struct {
			uint16_t port;
			uint8_t size; /* 1, 2 or 4 */
			uint8_t is_write;
			uint32_t count; /* > 1 for rep ins/outs */
			uint8_t *data;  /* count * size bytes */
		} io;
		struct {
			uint64_t addr;
			uint8_t size; /* 1, 2, 4 or 8 */
			uint8_t is_write;
			uint8_t *data;
		} mmio;
		struct {
			uint32_t suberror;
			uint8_t insn_len;
			uint8_t insn[16]; /* bytes at RIP when the backend reports them */
		} internal;
		struct {
			uint64_t hw_reason;
		} fail_entry;
		struct {
			uint32_t code; /* backend's own exit code */
		} unknown;
	};
};

struct vm;

struct vcpu {
	struct vm *vm;            /* parent VM */
	void *vcpu_handle;        /* backend handle */
	int vcpu_id;              /* index, also the APIC id / MPIDR affinity */
	void *run;                /* backend run structure (KVM: struct kvm_run) */
	void *private;            /* backend-private data */
	const struct hypervisor_ops *ops;
	struct vcpu_exit exit;    /* last exit */
	struct vcpu_state *state; /* library-private run state */
};

/*
 * Create vCPU `id` (0 <= id < 256, each id once). NULL with errno set on
 * failure (EINVAL, EEXIST, EBUSY when the VM runs, ENOMEM, or the backend's).
 */
struct vcpu *vm_create_vcpu(struct vm *vm, int id);

/*
 * Enter the guest until the next exit. Port-I/O and MMIO exits are
 * dispatched to registered devices before returning. Returns a positive
 * enum vcpu_exit_reason, or a negative errno. Details in vcpu->exit.
 * One thread at a time: -EBUSY while another thread is inside vcpu_run on
 * this vCPU, and always once vm_start() has given the vCPU its own thread.
 */
int vcpu_run(struct vcpu *vcpu);

int vcpu_get_regs(struct vcpu *vcpu, struct regs *regs);
int vcpu_set_regs(struct vcpu *vcpu, struct regs *regs);

/*
 * How often the guest left this vCPU, by the backend's reason for each exit
 * (an I/O exit that ended the VM through the exit port counts as io). Always
 * counted (per vCPU, no locks); exact once the vCPU stopped, a recent value
 * while it runs. By device: vm_device_exits(); as text: vm_format_stats().
 */
struct vcpu_stats {
	uint64_t exits;                        /* all reasons */
	uint64_t by_reason[VCPU_EXIT_REASONS]; /* index: enum vcpu_exit_reason */
};
int vcpu_get_stats(struct vcpu *vcpu, struct vcpu_stats *stats);

/* Stable lower-case name of an exit reason ("hlt", "mmio", ...). */
const char *vcpu_exit_reason_name(int reason);

/* Write the vCPU's registers (and, for internal errors, the instruction
 * bytes) to fd in a human-readable form. */
void vcpu_dump(struct vcpu *vcpu, int fd);

#endif

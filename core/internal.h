/* SPDX-License-Identifier: MIT */
/* Library-private state of VMs and vCPUs. Not installed. */
#ifndef VIBEVMM_CORE_INTERNAL_H
#define VIBEVMM_CORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "vm.h"

#define IO_MAX_WATCHES 32
#define UNCLAIMED_LOG_MAX 32

struct io_watch {
	int fd;
	int (*on_ready)(void *opaque);
	void *opaque;
	bool active;
};

struct vm_state {
	pthread_mutex_t lock;         /* guards the exit fields below */
	atomic_bool exit_requested;
	int exit_reason;              /* enum vcpu_exit_reason that ended the VM */
	int exit_status;
	int error;                    /* negative errno from a vCPU thread */
	struct vcpu *exit_vcpu;

	bool started, joined;
	atomic_int running_vcpus;
	atomic_int halted_vcpus;
	int done_fd;                  /* eventfd, readable once all vCPUs ended */

	/* I/O thread: epoll over watched fds, woken by wake_fd to quit. */
	struct io_watch watches[IO_MAX_WATCHES];
	int nr_watches;
	int epoll_fd, wake_fd;
	pthread_t io_thread;
	bool io_running;

	/* Unclaimed accesses are logged once per address. */
	pthread_mutex_t unclaimed_lock;
	uint64_t unclaimed[UNCLAIMED_LOG_MAX];
	int nr_unclaimed;
	bool irqchip;
};

struct vcpu_state {
	/* The thread inside vcpu_run, if any. kick_lock keeps it from leaving
	 * vcpu_run (and maybe exiting) while another thread signals it. */
	pthread_mutex_t kick_lock;
	pthread_t thread;
	atomic_bool has_thread;
	/* Set by vm_start for good: then only its thread may run the vCPU
	 * (guarded by kick_lock). */
	bool owned_by_vm;
	pthread_t runner;             /* vm_start's thread for this vCPU */
	bool runner_started;
};

/* bus.c: dispatch an I/O or MMIO exit to the device that claims it. */
void bus_dispatch_io(struct vm *vm, struct vcpu_exit *exit);
void bus_dispatch_mmio(struct vm *vm, struct vcpu_exit *exit);
void bus_destroy_devices(struct vm *vm);

/* mm.c */
void mm_release(struct mem_map *mm);

/* iothread.c */
int io_thread_start(struct vm *vm);
void io_thread_stop(struct vm *vm);
void io_state_init(struct vm_state *st);
void io_state_destroy(struct vm_state *st);

/* vcpu.c */
void vcpu_destroy(struct vcpu *vcpu);
void vcpu_kick(struct vcpu *vcpu);
/* vm_start: hand every vCPU to its own thread, which runs it through
 * vcpu_run_for_vm; -EBUSY (nothing changed) while a caller's thread is
 * inside vcpu_run. */
int vcpus_claim_for_vm(struct vm *vm);
void vcpus_release_from_vm(struct vm *vm); /* vm_start failed after all */
int vcpu_run_for_vm(struct vcpu *vcpu);
int vcpu_install_kick_handler(void);
/* In a vCPU thread that blocked all signals: let the kick through. */
void vcpu_unblock_kick(void);

/* arch/<arch>/dump.c: print registers for crash reports. */
void arch_dump_regs(const struct regs *regs, int fd);

#endif

/* SPDX-License-Identifier: MIT */
/* Library-private state of VMs and vCPUs. Not installed. */
#ifndef VIBEVMM_CORE_INTERNAL_H
#define VIBEVMM_CORE_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "vm.h"

/* Room for every virtio-mmio slot an arch has (32 on x86_64 and arm64)
 * with its queues' notify fds (virtio-net: 2 and its TAP), the consoles'
 * input and the output streams (VM_MAX_OUTPUTS). */
#define IO_MAX_WATCHES 128
#define UNCLAIMED_LOG_MAX 32
#define VM_MAX_OUTPUTS 8

struct io_watch {
	int fd;
	uint32_t events;              /* EPOLLIN or EPOLLOUT */
	int (*on_ready)(void *opaque);
	void *opaque;
	bool polled;                  /* epoll cannot watch it: always ready */
	atomic_bool armed;            /* polled: run the handler on the next loop */
	atomic_bool active;           /* false once dropped */
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

	/* I/O thread: epoll over watched fds, woken by wake_fd (to quit, or
	 * to run an armed polled watch). Watches are only ever appended, under
	 * watch_lock; entries never move, so the thread reads them unlocked. */
	struct io_watch watches[IO_MAX_WATCHES];
	atomic_int nr_watches;
	pthread_mutex_t watch_lock;
	int epoll_fd, wake_fd;
	pthread_t io_thread;
	bool io_running;
	atomic_bool io_quit;

	/* Console output streams, one per host fd (output.c); log_output is
	 * the stderr one, where the VM's log goes. */
	pthread_mutex_t output_lock;
	struct vm_output *outputs[VM_MAX_OUTPUTS];
	int nr_outputs;
	struct vm_output *log_output;

	/* Unclaimed accesses are logged once per address. */
	pthread_mutex_t unclaimed_lock;
	uint64_t unclaimed[UNCLAIMED_LOG_MAX];
	int nr_unclaimed;
	bool irqchip;
	bool finalized;               /* vm_finalize ran (under lock) */

	struct os_sandbox *sandbox;   /* vm_enable_seccomp; core/sandbox.c */

	/* The arch's machine (machine_create), freed by vm_destroy. */
	void *machine;
	void (*machine_free)(void *machine);
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

/* output.c: flush (bounded), report losses, close every output stream. */
void output_close_all(struct vm *vm);

/* util.c: "vibevmm: LEVEL: message\n" into line; its length, or 0. */
int format_log_line(char *line, size_t len, int level, const char *fmt,
		    va_list ap);

/* mm.c */
void mm_release(struct mem_map *mm);

/* vm.c: end the VM with a negative errno (e.g. a thread that cannot run). */
void vm_fail(struct vm *vm, int err);

/* iothread.c */
/*
 * Watch fd for `events` (EPOLLIN or EPOLLOUT) on the I/O thread, any time
 * (also while it runs). The handler returns enum vm_watch_result; a watch
 * added disarmed, or paused, runs again after io_watch_arm(). Returns the
 * watch index or -errno (-EEXIST: fd already watched for these events).
 */
int io_watch_add(struct vm *vm, int fd, uint32_t events,
		 int (*on_ready)(void *opaque), void *opaque, bool armed);
/* (Re-)arm watch idx; from any thread. */
void io_watch_arm(struct vm *vm, int idx);
int io_thread_start(struct vm *vm);
void io_thread_stop(struct vm *vm);
void io_state_init(struct vm_state *st);
void io_state_destroy(struct vm_state *st);

/* vm.c: the backend's vm_finalize, once, at the first vm_start or
 * vcpu_run (every vCPU exists by then). */
int vm_finalize(struct vm *vm);

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

/* arch/<arch>/dump.c: registers for crash reports, as snprintf does. */
int arch_format_regs(const struct regs *regs, char *buf, size_t len);

#endif

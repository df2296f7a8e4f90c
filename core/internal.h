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

/* Device memory mappings (devmem.c); backend slots after guest RAM's. */
#define VM_MAX_DEVMEM 32
struct devmem_slot {
	uint64_t gpa, size;
	void *hva;
	bool used;
};

struct vm_state {
	pthread_mutex_t lock;         /* guards the exit fields below */
	atomic_bool exit_requested;
	int exit_reason;              /* enum vcpu_exit_reason that ended the VM */
	int exit_status;
	int error;                    /* negative errno from a vCPU thread */
	struct vcpu *exit_vcpu;

	bool started, joined;
	atomic_int running_vcpus;     /* vCPU threads not yet ended */
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

	/* vm_pause/vm_resume (core/pause.c). pause_requested tells the vCPU
	 * threads to park before their next guest entry and the I/O thread
	 * to hold back device input; each says it did under pause_lock and
	 * waits on pause_cond until resumed or the VM ends. control_lock
	 * makes pause and resume one at a time, and keeps them off while a
	 * snapshot state call (snapstate.c) reads or writes the vCPUs. */
	pthread_mutex_t control_lock;
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	atomic_bool pause_requested;
	atomic_bool paused;           /* vm_pause succeeded (written under control_lock) */
	int parked_vcpus;             /* (pause_lock) */
	bool io_paused;               /* the I/O thread holds input back (pause_lock) */

	/* Device memory (devmem.c): host mappings such as an assigned
	 * device's BARs, mapped and unmapped while the VM runs. */
	pthread_mutex_t devmem_lock;
	struct devmem_slot devmem[VM_MAX_DEVMEM];

	/* The arch's machine (machine_create), freed by vm_destroy. */
	void *machine;
	void (*machine_free)(void *machine);
};

/*
 * Exit counters of one vCPU (vcpu_stats, vm_format_stats). Only the thread
 * inside vcpu_run writes them (enter_run makes it the only one), so a bump
 * is a relaxed load and store, no lock and no locked instruction; readers
 * on other threads see a recent value, exact once the vCPU stopped.
 */
#define STATS_MAX_DEVICES 64   /* devices counted one by one; later ones together */
#define STATS_MAX_UNCLAIMED 16 /* unclaimed addresses counted one by one */
#define STATS_UNCLAIMED_USED (1ULL << 62) /* in a key: the slot is taken */

struct vcpu_counters {
	atomic_uint_least64_t by_reason[VCPU_EXIT_REASONS];
	/* Port-I/O and MMIO exits by vm->devices index; the last slot counts
	 * devices past STATS_MAX_DEVICES. */
	atomic_uint_least64_t by_device[STATS_MAX_DEVICES + 1];
	/* Exits nobody claimed: key = space << 63 | USED | address; the last
	 * count is for addresses past the table. */
	atomic_uint_least64_t unclaimed_key[STATS_MAX_UNCLAIMED];
	atomic_uint_least64_t unclaimed[STATS_MAX_UNCLAIMED + 1];
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
	struct vcpu_counters counters;
};

/* bus.c: dispatch an I/O or MMIO exit to the device that claims it;
 * its index in vm->devices, or -ENODEV when none does. */
int bus_dispatch_io(struct vm *vm, struct vcpu_exit *exit);
int bus_dispatch_mmio(struct vm *vm, struct vcpu_exit *exit);
void bus_destroy_devices(struct vm *vm);

/* stats.c: text output, snprintf-style: keeps counting past the end of
 * buf (used: the length it needs), so the caller can size a buffer. */
struct text {
	char *buf;
	size_t len, used;
};
void text_put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* stats.c: count one exit of the calling vCPU (dev: bus_dispatch_*'s
 * result for I/O and MMIO exits, else unused). */
void stats_count_exit(struct vcpu *vcpu, const struct vcpu_exit *exit, int dev);

/* output.c: flush (bounded), report losses, close every output stream. */
void output_close_all(struct vm *vm);

/* util.c: "vibevmm: LEVEL: message\n" into line; its length, or 0. */
int format_log_line(char *line, size_t len, int level, const char *fmt,
		    va_list ap);

/* mm.c */
void mm_release(struct mem_map *mm);

/* vm.c: end the VM with a negative errno (e.g. a thread that cannot run). */
void vm_fail(struct vm *vm, int err);
/* vm.c: the vCPU whose thread is calling, if any. */
struct vcpu *vm_calling_vcpu(struct vm *vm);

/* pause.c */
void pause_state_init(struct vm_state *st);
void pause_state_destroy(struct vm_state *st);
/* vCPU thread, outside vcpu_run: wait here while the VM is paused. */
void pause_park_vcpu(struct vm *vm);
/* I/O thread, once per loop: whether device input is held back now
 * (acknowledging a pause or resume when that changed). */
bool pause_io_point(struct vm *vm, bool was_paused);
/* Wake everything parked: the VM ends (a vCPU thread ended or exit was
 * requested), so pausers and parked threads look again. */
void pause_wake_all(struct vm *vm);

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
/* Make the I/O thread look at its state (pause, resume) now. */
void io_thread_wake(struct vm *vm);
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
/* Finish the I/O or MMIO exit the vCPU last made, if any, without running
 * guest code (snapstate.c, with the vCPU held still): 0 or -errno. */
int vcpu_finish_exit(struct vcpu *vcpu);
/* In a vCPU thread that blocked all signals: let the kick through. */
void vcpu_unblock_kick(void);

/*
 * snapstate.c: a vCPU's or the VM's CPU and interrupt state as a snapshot
 * payload, through the backend (hypervisor_ops.vcpu_state_save...). Only
 * while no vCPU can be in the guest: the VM not started (and no thread
 * inside vcpu_run on it), paused, or ended and waited for; else -EBUSY.
 * -EOPNOTSUPP when the backend has no such op. A save appends to out
 * (nothing when it fails; -ENOMEM when out could not grow); a load takes
 * the whole of in, checked before anything changes (-EINVAL: malformed).
 * 0 or -errno.
 */
int vcpu_state_save(struct vcpu *vcpu, struct snap_buf *out);
int vcpu_state_load(struct vcpu *vcpu, struct snap_cursor *in);
int vm_state_save(struct vm *vm, struct snap_buf *out);
int vm_state_load(struct vm *vm, struct snap_cursor *in);

/* arch/<arch>/dump.c: registers for crash reports, as snprintf does. */
int arch_format_regs(const struct regs *regs, char *buf, size_t len);

#endif

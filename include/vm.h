/* SPDX-License-Identifier: MIT */
/* VM lifecycle: creation, memory, running, stopping, destruction. */
#ifndef VIBEVMM_VM_H
#define VIBEVMM_VM_H

#include <stddef.h>
#include <stdint.h>

#include "devices.h"
#include "hypervisor.h"
#include "mm.h"
#include "vcpu.h"

#define VM_MAX_VCPUS 64

struct vm {
	void *vm_handle;          /* backend VM handle */
	struct vcpu **vcpus;      /* indexed by vCPU id, NULL where absent */
	int num_vcpus;            /* vCPUs created */
	struct mem_map *mem_map;  /* GPA -> HVA */
	struct device **devices;  /* registered devices */
	int num_devices;
	void *private;            /* backend-private data */

	const struct hypervisor_ops *ops;
	int log_level;            /* enum log_level; LOG_WARN by default */
	struct vm_state *state;   /* library-private run state */
};

/*
 * Create a VM on the detected hypervisor. NULL with errno set on failure:
 * ENOENT (no /dev/kvm), EACCES, ENODEV, ENOMEM.
 */
struct vm *vm_create(void);

/* Same, on a given backend. */
struct vm *vm_create_on(const struct hypervisor_ops *ops);

/*
 * Map caller-owned host memory at guest-physical `gpa`. Page-aligned gpa, hva
 * and size. -EINVAL (misaligned, zero), -EEXIST (overlap), -ENOSPC (slots),
 * -EBUSY (running), or the backend's error. The caller keeps ownership.
 */
int vm_add_memory(struct vm *vm, uint64_t gpa, void *hva, uint64_t size);

/*
 * Device memory: caller-owned host memory the guest reaches at `gpa`
 * without exits, such as an assigned device's BAR (mmap of its VFIO
 * region). Unlike vm_add_memory it may be mapped and unmapped while the VM
 * runs (the guest moves BARs), and it is not guest RAM: vm_gpa_to_hva and
 * device DMA never reach it. Page-aligned gpa, hva and size.
 * vm_map_device_memory returns a handle (>= 0) for vm_unmap_device_memory,
 * or -EINVAL, -EEXIST (overlaps RAM or other device memory), -ENOSPC
 * (VM_MAX_DEVMEM mappings), or the backend's error. The caller keeps the
 * memory mapped until it unmapped it here (or the VM is destroyed).
 */
int vm_map_device_memory(struct vm *vm, uint64_t gpa, void *hva, uint64_t size);
int vm_unmap_device_memory(struct vm *vm, int handle);

/* Allocate (anonymous, lazily backed) and map guest RAM owned by the VM. */
int vm_alloc_memory(struct vm *vm, uint64_t gpa, uint64_t size);

/*
 * The same, 2 MiB aligned and offered to transparent huge pages
 * (MADV_HUGEPAGE), so that the host, when its THP setting allows, backs
 * and maps it with 2 MiB pages: fewer second-stage TLB misses for the guest
 * (QEMU does the same). The x86 machine uses it. The arm64 machine does not
 * yet: in the emulated arm64 test host, 2 MiB-backed guest RAM made the
 * nested KVM lose guests' 4- and 8-byte MMIO stores; to be measured on
 * arm64 hardware.
 */
int vm_alloc_memory_huge(struct vm *vm, uint64_t gpa, uint64_t size);

/*
 * Create the in-kernel interrupt controller: x86, PIC/IOAPIC/LAPIC + PIT,
 * before creating vCPUs (-EBUSY after), and with it HLT no longer exits to
 * user space; arm64, a GICv3 (a GICv2 where there is none) at the layout's
 * addresses, finished by the backend once every vCPU exists (at the first
 * run). vm_irqchip_model() says which one the VM got.
 */
int vm_create_irqchip(struct vm *vm);
enum irqchip_model {
	IRQCHIP_NONE = 0,
	IRQCHIP_X86,   /* PIC + IOAPIC + LAPIC */
	IRQCHIP_GICV2,
	IRQCHIP_GICV3,
};
enum irqchip_model vm_irqchip_model(struct vm *vm);

/*
 * Port-I/O or MMIO exits that `dev` (registered) handled on `vcpu`, or on
 * every vCPU with vcpu NULL. 0 for a device the VM does not have.
 */
uint64_t vm_device_exits(struct vm *vm, const struct device *dev,
			 struct vcpu *vcpu);

/*
 * The exit histogram as text: per reason and per device (unclaimed port and
 * MMIO addresses each on their own line), a column per vCPU and the total.
 * Like snprintf: the length it needs; buf holds at most len - 1 of it.
 */
int vm_format_stats(struct vm *vm, char *buf, size_t len);

/*
 * The VM's counters as one line of JSON (no newline), Firecracker-style
 * (its metrics file has one such line per flush):
 *   {"utc_timestamp_ms":N,
 *    "vcpu":{"exits":N,"exit_io":N,"exit_mmio":N,"exit_hlt":N,...},
 *    "block":{...},"block_<id>":{...},"net":{...},"net_<id>":{...}}
 * "vcpu": every vCPU's exits summed, one "exit_<reason>" per enum
 * vcpu_exit_reason (vcpu_exit_reason_name, '-' as '_'). Then, for each
 * device group (struct device_metrics), the sum over its devices and each
 * device by id. Counts are totals since the VM was created (Firecracker
 * writes differences since its last flush: a writer that wants those
 * subtracts the previous line). Like snprintf: the length it needs; buf
 * holds at most len - 1 of it. -EINVAL for a NULL vm or buf with len.
 */
int vm_format_metrics(struct vm *vm, char *buf, size_t len);

/*
 * Run every vCPU on its own thread (and the VM's I/O thread for device
 * input) until the guest ends: all vCPUs halted, shutdown, guest exit,
 * poweroff, reset, an error, or vm_stop(). Returns at once; see vm_wait().
 * From then on only those threads run the vCPUs (vcpu_run: -EBUSY).
 * -EBUSY when started before, or while a thread is inside vcpu_run.
 */
int vm_start(struct vm *vm);

/* Stop all vCPUs (interrupting any blocked in the guest) and wait for them.
 * Not from a vCPU thread: devices use vm_request_exit(). */
int vm_stop(struct vm *vm);

/*
 * Pause a VM that vm_start started: every vCPU thread leaves the guest (the
 * same kick vm_stop uses) and waits outside it; the I/O thread stops
 * handing device input to the guest (console input, TAP frames, virtio
 * queue notifications stay pending; console output still drains, and
 * requests already under way, such as a disk's io_uring reads, may
 * complete). Returns once all of them are parked, so from then on the
 * guest runs no instruction and sees nothing new. The guest clock (x86
 * KVM): each vCPU's kvmclock is told the guest was stopped
 * (KVM_KVMCLOCK_CTRL: Linux's soft-lockup watchdog does not fire) and the
 * clock is read (KVM_GET_CLOCK); vm_resume sets it back (KVM_SET_CLOCK),
 * so guest time does not jump by the paused interval, as QEMU does. arm64
 * KVM: no clock step; the guest's virtual counter runs on while paused
 * (hv/kvm_arm64.c says why).
 * A paused VM can be stopped (vm_stop) and destroyed as a running one.
 * Not from a device callback or an I/O watch (those run on the threads
 * that must park): -EDEADLK.
 * 0, or: -EINVAL (NULL, or never started), -ESRCH (the VM has ended, or
 * ended while pausing), -EALREADY (already paused: callers that want
 * pausing to be idempotent take it as success), -EDEADLK, -EOPNOTSUPP
 * (a backend that cannot pause; the VM goes on running), or the backend's
 * error saving the clock (the VM is paused all the same).
 */
int vm_pause(struct vm *vm);

/*
 * Resume a paused VM: the guest clock is put back first, then the vCPUs
 * re-enter the guest and the I/O thread delivers what waited. 0, -EINVAL
 * (NULL, never started), -ESRCH (ended), -EALREADY (not paused), -EDEADLK,
 * or the backend's error restoring the clock (the VM runs all the same).
 */
int vm_resume(struct vm *vm);

/* Where the VM is in its life, for a control plane's status query. */
enum vm_run_state {
	VM_RUN_CREATED = 0, /* vm_start not called yet */
	VM_RUN_RUNNING,
	VM_RUN_PAUSED,
	VM_RUN_STOPPED,     /* ended or ending: the guest exited, vm_stop, an error */
};
enum vm_run_state vm_run_state(struct vm *vm);

/* Stable lower-case name of a run state ("running", ...). */
const char *vm_run_state_name(enum vm_run_state state);

/* Wait until the VM ends by itself or is stopped; returns the exit reason
 * that ended it (positive) or a negative errno from a vCPU. */
int vm_wait(struct vm *vm);

/* Ask all vCPUs to stop with `reason` and `status` (first request wins).
 * Safe from any thread, devices included. */
void vm_request_exit(struct vm *vm, enum vcpu_exit_reason reason, int status);

/* The reason and status that ended the VM (0 while running). */
int vm_exit_reason(struct vm *vm);
int vm_exit_status(struct vm *vm);

/* The vCPU whose exit ended the VM, or NULL. */
struct vcpu *vm_exit_vcpu(struct vm *vm);

/*
 * A file descriptor that becomes readable once the VM has ended (for poll
 * loops that also watch signals). Owned by the VM.
 */
int vm_done_fd(struct vm *vm);

/*
 * Watch `fd` for input on the VM's I/O thread: `on_ready(opaque)` is called
 * there while fd is readable (or at EOF/hang-up). It returns VM_WATCH_KEEP,
 * VM_WATCH_PAUSE (stop watching until vm_resume_fd(), e.g. while a device
 * buffer is full) or VM_WATCH_DROP (stop for good, e.g. at EOF). A paused
 * fd is not looked at, so a hang-up while paused costs nothing; resuming
 * from any thread, at any moment, is race-free. An fd epoll cannot watch (a
 * regular file, /dev/null) counts as always readable. Any time, also while
 * the VM runs. 0 or -errno (-EEXIST: already watched).
 */
enum vm_watch_result { VM_WATCH_KEEP = 0, VM_WATCH_PAUSE = 1, VM_WATCH_DROP = 2 };
int vm_watch_fd(struct vm *vm, int fd, int (*on_ready)(void *opaque),
		void *opaque);
int vm_resume_fd(struct vm *vm, int fd);
/*
 * Stop watching `fd` (e.g. a device constructor that fails after its
 * watches, or a device torn down before vm_destroy). Only while the I/O
 * thread is not running: before vm_start or after the VM ended. 0, -ENOENT
 * when fd is not watched, -EBUSY while the I/O thread runs.
 */
int vm_unwatch_fd(struct vm *vm, int fd);

/*
 * Console output that never blocks the caller (a vCPU thread, the I/O
 * thread): vm_output_open() gives the VM's output stream for host fd `fd`
 * (one per fd, shared, owned by the VM; NULL with errno on failure; open it
 * while setting the VM up). vm_output_write() sends bytes at once when the
 * fd takes them, else keeps up to 64 KiB that the I/O thread writes as the
 * reader catches up; beyond that, or once the reader is gone, bytes are
 * dropped, counted and logged once, as a serial line would lose them.
 * vm_destroy() gives slow readers up to a second for what is left.
 * The VM's own log (vm_err ... vm_debug) goes through its stderr stream,
 * or the stream of the fd given to vm_set_log_fd (0 or -errno).
 */
struct vm_output;
struct vm_output *vm_output_open(struct vm *vm, int fd);
void vm_output_write(struct vm_output *out, const void *data, size_t len);
int vm_set_log_fd(struct vm *vm, int fd);

/*
 * Fast device paths (KVM: ioeventfd / irqfd). vm_add_ioeventfd: a guest
 * write of `len` bytes at `addr` (MMIO, or a port when space is DEVICE_PIO)
 * signals eventfd `fd` in the kernel instead of exiting to the device
 * callback; with `datamatch`, only writes of `value`. vm_add_irqfd: writing
 * to eventfd `fd` raises an edge on `gsi`. -ENOTSUP where the backend has no
 * such path: devices then take the ordinary callback / vm_irq_line route.
 */
int vm_add_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len,
		     enum device_space space, int fd, int datamatch,
		     uint64_t value);
int vm_add_irqfd(struct vm *vm, uint32_t gsi, int fd);
/* Take back an ioeventfd added with exactly these arguments (a PCI BAR
 * the guest moved). 0, -ENOTSUP, or the backend's error. */
int vm_del_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len,
		     enum device_space space, int fd, int datamatch,
		     uint64_t value);

/*
 * Message-signalled interrupts (a PCI function's MSI-X vectors): from now
 * on GSI `gsi` delivers the message (addr, data) to the guest's local
 * APICs, or nothing (usable false, as for a masked vector); an irqfd on
 * the GSI (vm_add_irqfd) raises it. The GSI must be in the arch's MSI
 * range (x86_64: 24 and up; below are the IOAPIC's pins): else -EINVAL.
 * -ENOTSUP without an in-kernel irqchip, -EOPNOTSUPP where the backend
 * has no MSI routes (arm64 for now), -ENOSPC past 1024 routes.
 */
int vm_msi_route(struct vm *vm, uint32_t gsi, bool usable, uint64_t addr, uint32_t data);

/*
 * Sandbox (Linux: seccomp-BPF; off unless asked for). After this call every
 * thread the library starts for this VM -- vCPU threads, the I/O thread,
 * device workers such as virtio-blk's -- confines itself, as it starts, to
 * an allow-list of the system calls (and ioctl requests) its kind needs;
 * any other system call kills the whole process with SIGSYS. The lists are
 * in README.md ("Sandbox"). Mind your own device callbacks and I/O watches:
 * they run on vCPU threads and the I/O thread, under those threads' lists.
 * Call before vm_start and before creating devices (a virtio-blk device
 * starts its worker when created). The filters are built and each is
 * installed once on a short-lived thread here, so a failure shows now:
 * 0, -EBUSY (too late), -ENOTSUP (no seccomp filters on this OS/kernel), or
 * the error installing gave (e.g. -ENOMEM: filters inherited from the
 * parent process leave no room). Calling it again is a no-op.
 */
int vm_enable_seccomp(struct vm *vm);

/*
 * Confine the calling thread (the embedding program's, e.g. main) to what a
 * VMM's controlling thread needs once the VM runs: poll/read (vm_done_fd, a
 * signalfd), write, restoring a terminal (TCGETS/TCSETS*), the register
 * dump (vcpu_dump), vm_request_exit/vm_stop/vm_wait/vm_destroy, close and
 * exit. For good: no more threads, files or sockets from this thread. After
 * vm_start, with vm_enable_seccomp. 0, -EINVAL (not enabled or not started),
 * or -errno from the kernel.
 */
int vm_seccomp_confine_caller(struct vm *vm);

/*
 * The same for the embedding program's control-socket server thread (such
 * as vibevmm's API socket): poll, accept4 on the sockets it has, read,
 * write, close, unlink (its socket file as it ends), clock_gettime. 0,
 * -EINVAL (not enabled or not started), or -errno from the kernel.
 */
int vm_seccomp_confine_api(struct vm *vm);

/* Destroy the VM: stop it, destroy vCPUs and devices, free owned memory. */
void vm_destroy(struct vm *vm);

#endif

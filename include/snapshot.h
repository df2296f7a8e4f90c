/* SPDX-License-Identifier: MIT */
/*
 * Snapshots: a paused VM saved to two files, and restored (in this process
 * or a new one) into a VM built the same way, where the guest goes on
 * without a reboot or a driver reset.
 *
 * The state file (versioned, arch-tagged, checksummed: a truncated,
 * corrupted, other-arch or other-version file is refused whole, with a
 * one-line reason, before anything in it is used) holds the RAM layout, the
 * VM's interrupt controller, timer and clock state, each vCPU's state, each
 * registered device's state (in registration order, with its name and
 * address as a check), and the embedding program's own description of how
 * it built the VM, opaque to the library (the vibevmm command line keeps
 * its options there, so that a restore needs no flags).
 * The memory file holds guest RAM, slot after slot; pages that are all
 * zeros are left as holes, so it takes the space of what the guest used.
 *
 * Restoring: vm_snapshot_app_data() gives back that description; the
 * program builds the VM as before (vm_create, machine_create, the same
 * devices in the same order, no kernel loaded) and calls vm_restore()
 * instead of booting: the vCPUs are created, guest RAM is the memory file
 * (mapped copy-on-write: many VMs can be restored from one file, which is
 * never written) and every state is loaded; vm_start() then goes on.
 *
 * Only on backends with the state operations (x86_64 and arm64 KVM; on
 * arm64 with a vGICv3 or no irqchip); others get -EOPNOTSUPP. Errors: 0
 * or a negative errno with a one-line reason in `why` (NUL-terminated, at
 * most why_len bytes).
 */
#ifndef VIBEVMM_SNAPSHOT_H
#define VIBEVMM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

#include "vm.h"

/*
 * Save a paused VM (vm_pause) to state_path and mem_path (created or
 * replaced, 0600; the state file appears whole or not at all). Each device
 * is quiesced first (requests it took finish) and let go after; the VM
 * stays paused. app/app_len: the program's description, kept as it is (may
 * be NULL/0). -EBUSY when the VM is not paused; -EOPNOTSUPP when the
 * backend or a device cannot be saved (why names it).
 */
int vm_snapshot(struct vm *vm, const char *state_path, const char *mem_path, const void *app,
		size_t app_len, char *why, size_t why_len);

/* The same into open files (read-write; each truncated and written from
 * the start, then synced): for a program whose sandbox forbids opening
 * files once the VM runs (vibevmm's --snapshot-on-signal opens them first).
 * The state file is not replaced atomically; a save cut short leaves one
 * that vm_restore refuses (its checksum). */
int vm_snapshot_fds(struct vm *vm, int state_fd, int mem_fd, const void *app, size_t app_len,
		    char *why, size_t why_len);

/* Check the state file whole and give back the program's description
 * (*app malloc'ed, or NULL with *app_len 0 when there is none). */
int vm_snapshot_app_data(const char *state_path, void **app, size_t *app_len, char *why,
			 size_t why_len);

struct vm_restore_options {
	/* Read the memory file into guest RAM instead of mapping it. */
	bool read_memory;
};

/*
 * Load the snapshot into vm: built as the saved one was (the same RAM
 * layout, devices registered in the same order with the same names and
 * addresses), no vCPU created yet, not started. The vCPUs are created
 * here. On failure the VM is in no defined state: destroy it. o may be
 * NULL (the defaults).
 */
int vm_restore(struct vm *vm, const char *state_path, const char *mem_path,
	       const struct vm_restore_options *o, char *why, size_t why_len);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * vibevmm's snapshots (include/snapshot.h): the options that rebuild the
 * VM, kept as JSON in the state file (the program's description there), so
 * that `--restore DIR` needs no other flags; and the files of
 * `--snapshot-on-signal DIR`, opened before the sandbox (which forbids
 * opening files once the VM runs).
 */
#ifndef VIBEVMM_CLI_SNAPSHOT_CLI_H
#define VIBEVMM_CLI_SNAPSHOT_CLI_H

#include <stddef.h>

#include "cli/options.h"

#define SNAPSHOT_STATE_FILE "state"
#define SNAPSHOT_MEM_FILE "mem"

struct json_t;

/* JSON (malloc'ed) of what builds cfg's VM: the machine (vCPUs, RAM,
 * Linux or raw, debug console, exit port, console kind) and its devices
 * (disks, network devices, vsock). NULL when out of memory. */
char *cli_snapshot_describe(const struct vmm_config *cfg);

/*
 * The reverse, into cfg (which keeps the rest of its options): 0, or
 * -EINVAL with a one-line reason in err. cfg's strings then point into
 * *holder, to be freed with cli_snapshot_free_holder after the VM is gone.
 */
int cli_snapshot_rebuild(const void *json, size_t len, struct vmm_config *cfg,
			 struct json_t **holder, char *err, size_t errlen);
void cli_snapshot_free_holder(struct json_t *holder);

/* Rebuilt network interfaces onto other TAPs: each override's key is an
 * interface's iface_id, or (one saved without) its TAP name. 0, or
 * -ENOENT with a one-line reason when a key names none. */
int cli_snapshot_override_nets(struct vmm_config *cfg, const struct snap_override *o, int n,
			       char *err, size_t errlen);
/* The same for disks: the key a drive_id or a saved path, opened at the
 * override's path instead. */
int cli_snapshot_override_disks(struct vmm_config *cfg, const struct snap_override *o, int n,
				char *err, size_t errlen);

/* DIR/state and DIR/mem, created (0600) or opened read-write: 0, or
 * -errno with a one-line reason in err. */
int cli_snapshot_open(const char *dir, int *state_fd, int *mem_fd, char *err, size_t errlen);

/* DIR/name into buf. -ENAMETOOLONG when it does not fit. */
int cli_snapshot_path(char *buf, size_t len, const char *dir, const char *name);

#endif

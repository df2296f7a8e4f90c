/* SPDX-License-Identifier: MIT */
/*
 * Firecracker's JSON configuration (the API's request bodies and the
 * --config-file sections) onto vibevmm's struct vmm_config. Pure: no I/O
 * besides reading nothing; unit-tested and fuzzed through the API tests.
 */
#ifndef VIBEVMM_CLI_API_FC_CONFIG_H
#define VIBEVMM_CLI_API_FC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/options.h"

#define FC_MAX_ID 64
#define FC_MAX_VCPUS 32 /* Firecracker's limit; vibevmm's own may be lower */

struct fc_drive {
	char id[FC_MAX_ID];
	char *path;
	bool root, read_only;
	char cache_type[16];  /* "Unsafe" (default) or "Writeback" */
	bool io_sync;         /* io_engine "Sync" (default "Async"?: see .c) */
};

struct fc_net {
	char id[FC_MAX_ID];
	char *tap;
	uint8_t mac[6];
	bool have_mac;
};

struct fc_config {
	char *kernel, *initrd, *boot_args;
	int vcpus;
	uint64_t mem_mib;
	bool smt, track_dirty_pages;
	struct fc_drive drives[CLI_MAX_DISKS];
	int nr_drives;
	struct fc_net nets[CLI_MAX_NETS];
	int nr_nets;
	char *log_path, *log_level; /* NULL: not configured */
	char *metrics_path;
	bool entropy;
	bool have_vsock;
	uint32_t vsock_cid;
	char *vsock_uds;
	char *cmdline; /* built by fc_to_vmm_config: boot_args + root= */
	char *instance_id; /* --id; NULL: "anonymous-instance" */
};

/* Defaults as Firecracker's: 1 vCPU, 128 MiB. */
void fc_config_init(struct fc_config *fc);
void fc_config_free(struct fc_config *fc);

/*
 * One section's JSON text (a request body), applied to fc. `id` is the
 * path's {id} for drives and network interfaces (NULL otherwise). 0, or
 * -EINVAL with the fault message in err ("machine-config: vcpu_count: want
 * an integer from 1 to 32"); fc is unchanged on error.
 */
enum fc_section {
	FC_BOOT_SOURCE, FC_MACHINE_CONFIG, FC_DRIVE, FC_NET, FC_LOGGER,
	FC_METRICS, FC_ENTROPY, FC_VSOCK,
};
int fc_apply(struct fc_config *fc, enum fc_section s, const char *id,
	     const char *json, size_t len, char *err, size_t errlen);

/*
 * PATCH /drives/{id} (a running VM's drive gets a new image): the body
 * checked against fc; *drive: the drive's index in fc->drives, *path: the
 * new image (malloc'ed), or NULL when the body changes nothing. 0, or
 * -EINVAL with the fault message in err.
 */
int fc_patch_drive(const struct fc_config *fc, const char *id, const char *json, size_t len,
		   int *drive, char **path, char *err, size_t errlen);

/* PATCH /machine-config (before start): the body's fields over the current
 * ones, checked as a PUT of the result. 0, or -EINVAL with err. */
int fc_patch_machine_config(struct fc_config *fc, const char *json, size_t len, char *err,
			    size_t errlen);

/*
 * PUT /snapshot/create and /snapshot/load (Firecracker's bodies; Full
 * snapshots and File memory backends only). The paths are malloc'ed
 * (fc_snapshot_load_free for a load's); resume: the loaded VM runs at
 * once (resume_vm); network_overrides put interfaces (by iface_id) on
 * other TAPs. 0, or -EINVAL with the fault message in err.
 */
int fc_snapshot_create(const char *json, size_t len, char **state_path, char **mem_path,
		       char *err, size_t errlen);
struct fc_snapshot_load {
	char *state_path, *mem_path;
	bool resume;
	struct snap_override overrides[CLI_MAX_NETS]; /* network_overrides; malloc'ed */
	int nr_overrides;
};
int fc_snapshot_load(const char *json, size_t len, struct fc_snapshot_load *l, char *err,
		     size_t errlen);
void fc_snapshot_load_free(struct fc_snapshot_load *l);

/* The drive's image is `path` now (taken over: malloc'ed). */
void fc_take_drive_path(struct fc_config *fc, int drive, char *path);

/* PATCH /network-interfaces/{id}: checked; vibevmm has no rate limiters,
 * so a body that asks for one fails and one that does not changes nothing. */
int fc_patch_net(const struct fc_config *fc, const char *id, const char *json, size_t len,
		 char *err, size_t errlen);

/* The disk (an index into vmm_config.disks) fc_to_vmm_config made of
 * fc->drives[drive]: the root device is the first. */
int fc_drive_disk(const struct fc_config *fc, int drive);

/* A whole --config-file (the sections keyed "boot-source", "drives", ...). */
int fc_apply_file(struct fc_config *fc, const char *json, size_t len, char *err,
		  size_t errlen);

/*
 * Fill the guest's part of cfg (kernel, initrd, cmdline, cpus, mem, disks,
 * nets; the rest, from the command line, is kept). -EINVAL with a reason
 * when no kernel was given. cfg then points into fc.
 */
int fc_to_vmm_config(struct fc_config *fc, struct vmm_config *cfg, char *err, size_t errlen);

/* The reverse after a snapshot load: fc's machine (kernel, vCPUs, memory,
 * drives and interfaces with their ids, vsock) is the restored cfg's, so
 * GET /vm/config shows it and PATCH /drives/{id} finds the drive. 0 or
 * -ENOMEM. */
int fc_adopt_restored(struct fc_config *fc, const struct vmm_config *cfg);

/* JSON of GET /machine-config and GET /vm/config (malloc'ed; NULL on ENOMEM). */
char *fc_machine_config_json(const struct fc_config *fc);
char *fc_vm_config_json(const struct fc_config *fc);

#endif

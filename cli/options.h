/* SPDX-License-Identifier: MIT */
/* Command line -> a VM description. Pure: no I/O, unit-tested. */
#ifndef VIBEVMM_CLI_OPTIONS_H
#define VIBEVMM_CLI_OPTIONS_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "devices.h"

#define CLI_MAX_DISKS 8
#define CLI_MAX_NETS 8
#define CLI_MAX_VFIO 8
#define CLI_DEFAULT_MEM (256ULL << 20)
#define CLI_MIN_MEM (4ULL << 20)
#define CLI_MAX_MEM (1ULL << 40)

enum console_kind { CONSOLE_SERIAL, CONSOLE_VIRTIO };
enum virtio_transport_kind { TRANSPORT_MMIO, TRANSPORT_PCI };

struct disk_option {
	const char *id;   /* the API's drive_id (kept in snapshots); NULL from --disk */
	const char *path;
	int readonly;
	unsigned num_queues;        /* 0: one per vCPU */
	enum virtio_blk_cache cache;
	enum virtio_blk_aio aio;
};

struct net_option {
	const char *id;   /* the API's iface_id (kept in snapshots); NULL from --net */
	const char *tap;
	uint8_t mac[6];
	int have_mac; /* else derived from the TAP name */
	int vhost;    /* vhost=on: frames through /dev/vhost-net */
	unsigned queues; /* queue pairs; 0: one per vCPU (at most 8) */
};

/* --vsock cid=N,uds=PATH (one device; uds NULL: none). */
struct vsock_option {
	uint64_t cid;
	const char *uds;
};

struct vmm_config {
	const char *kernel, *initrd, *cmdline, *binary;
	uint64_t mem;
	int cpus;
	uint64_t entry;
	struct disk_option disks[CLI_MAX_DISKS];
	int nr_disks;
	struct net_option nets[CLI_MAX_NETS];
	int nr_nets;
	struct vsock_option vsock;
	/* Asked for with --exit-port / --debugcon; --binary always has both. */
	int exit_port, debugcon;
	enum console_kind console;
	int log_level;
	int bzimage_as_is;
	int no_pvh;
	int no_seccomp;     /* seccomp sandbox off (on by default) */
	int stats;          /* print the exit histogram at the end */
	int no_kernel_cache; /* never keep/reuse decompressed kernels */
	int pci;            /* --pci: a PCI bus for the guest */
	enum virtio_transport_kind transport; /* --transport: the virtio devices' */
	const char *vfio[CLI_MAX_VFIO]; /* --vfio: host devices assigned, in order */
	int nr_vfio;
	int help, version;
	/* Firecracker-style front ends (cli/api/): the guest comes from the
	 * socket's requests or the file, not from --kernel/--binary. */
	const char *api_sock, *config_file;
	int no_api;
	/* Firecracker's --metrics-path and --id (with --kernel too). */
	const char *metrics_path, *id;
	/* Snapshots: --restore DIR (the guest comes from DIR/state and
	 * DIR/mem) and --snapshot-on-signal DIR (SIGUSR1 saves there). */
	const char *restore_dir, *snapshot_dir;
	/* With --restore: --net-override KEY=TAP, the restored interface
	 * whose iface_id, or else saved TAP name, is KEY goes on TAP;
	 * --disk-override KEY=PATH, the disk whose drive_id, or else saved
	 * path, is KEY is opened at PATH. */
	struct snap_override { const char *key, *to; } net_overrides[CLI_MAX_NETS],
		disk_overrides[CLI_MAX_DISKS];
	int nr_net_overrides, nr_disk_overrides;
	int restore_read_memory; /* --read-memory: copy the memory file in */
};

/*
 * Parse argv into cfg. 0 on success; -EINVAL with a one-line reason in
 * err (no trailing newline) on bad input. cfg points into argv, whose
 * strings may be edited (a --disk value is split and unescaped in place).
 */
int cli_parse(int argc, char **argv, struct vmm_config *cfg, char *err,
	      size_t errlen);

/* The --help text. */
/* --help: the options, with what this arch's machine does. */
void cli_print_usage(FILE *f);

#endif

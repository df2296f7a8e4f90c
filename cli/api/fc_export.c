/* SPDX-License-Identifier: MIT */
/* struct fc_config's life, and what is made of it: the struct vmm_config the
 * VM is built from, and the JSON of GET /machine-config and GET /vm/config. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/api/fc_config.h"

#define FC_DEFAULT_MEM_MIB 128

void fc_config_init(struct fc_config *fc)
{
	*fc = (struct fc_config){ .vcpus = 1, .mem_mib = FC_DEFAULT_MEM_MIB };
}

void fc_config_free(struct fc_config *fc)
{
	free(fc->kernel);
	free(fc->initrd);
	free(fc->boot_args);
	for (int i = 0; i < fc->nr_drives; i++)
		free(fc->drives[i].path);
	for (int i = 0; i < fc->nr_nets; i++)
		free(fc->nets[i].tap);
	free(fc->log_path);
	free(fc->log_level);
	free(fc->metrics_path);
	free(fc->vsock_uds);
	free(fc->cmdline);
	free(fc->instance_id);
	fc_config_init(fc);
}

/* boot_args, then root= for a root drive as Firecracker adds it (the root
 * drive is the first disk, /dev/vda). NULL boot_args and no root: NULL,
 * vibevmm's default command line. */
static int build_cmdline(struct fc_config *fc, const struct fc_drive *root)
{
	const char *args = fc->boot_args ? fc->boot_args : "console=ttyS0";
	char *s = NULL;

	free(fc->cmdline);
	fc->cmdline = NULL;
	if (!root)
		return fc->boot_args && !(fc->cmdline = strdup(fc->boot_args)) ? -ENOMEM : 0;
	if (asprintf(&s, "%s root=/dev/vda %s", args, root->read_only ? "ro" : "rw") < 0)
		return -ENOMEM;
	fc->cmdline = s;
	return 0;
}

static void add_disk(struct vmm_config *cfg, const struct fc_drive *d)
{
	/* Both cache types on the page cache: vibevmm always offers FLUSH and
	 * honours it ("Unsafe" would drop flushes); io_engine "Sync" is
	 * vibevmm's aio=sync, the default its io_uring. */
	cfg->disks[cfg->nr_disks++] = (struct disk_option){
		.id = d->id, .path = d->path, .readonly = d->read_only, .cache = VIRTIO_BLK_CACHE_HOST,
		.aio = d->io_sync ? VIRTIO_BLK_AIO_SYNC : VIRTIO_BLK_AIO_IO_URING,
	};
}

int fc_to_vmm_config(struct fc_config *fc, struct vmm_config *cfg, char *err, size_t errlen)
{
	const struct fc_drive *root = NULL;

	if (!fc->kernel) {
		snprintf(err, errlen, "boot-source: no kernel_image_path (PUT /boot-source first)");
		return -EINVAL;
	}
	for (int i = 0; i < fc->nr_drives; i++)
		if (fc->drives[i].root)
			root = &fc->drives[i];
	if (build_cmdline(fc, root)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	cfg->kernel = fc->kernel;
	cfg->initrd = fc->initrd;
	cfg->cmdline = fc->cmdline;
	cfg->binary = NULL;
	cfg->cpus = fc->vcpus;
	cfg->mem = fc->mem_mib << 20;
	cfg->nr_disks = 0;
	if (root)
		add_disk(cfg, root);
	for (int i = 0; i < fc->nr_drives; i++)
		if (&fc->drives[i] != root)
			add_disk(cfg, &fc->drives[i]);
	cfg->nr_nets = 0;
	for (int i = 0; i < fc->nr_nets; i++) {
		const struct fc_net *n = &fc->nets[i];
		struct net_option *o = &cfg->nets[cfg->nr_nets++];

		*o = (struct net_option){ .id = n->id, .tap = n->tap, .have_mac = n->have_mac };
		memcpy(o->mac, n->mac, 6);
	}
	cfg->vsock = fc->have_vsock ?
		(struct vsock_option){ .cid = fc->vsock_cid, .uds = fc->vsock_uds } :
		(struct vsock_option){ 0 };
	return 0;
}

int fc_drive_disk(const struct fc_config *fc, int drive)
{
	int k = 0;

	if (fc->drives[drive].root)
		return 0;
	for (int i = 0; i < fc->nr_drives; i++)
		k += fc->drives[i].root || i < drive;
	return k;
}

/* The machine part of fc forgotten: what a loaded snapshot replaces. */
static void drop_machine(struct fc_config *fc)
{
	free(fc->kernel);
	free(fc->initrd);
	free(fc->boot_args);
	fc->kernel = fc->initrd = fc->boot_args = NULL;
	for (int i = 0; i < fc->nr_drives; i++)
		free(fc->drives[i].path);
	for (int i = 0; i < fc->nr_nets; i++)
		free(fc->nets[i].tap);
	fc->nr_drives = fc->nr_nets = 0;
	free(fc->vsock_uds);
	fc->vsock_uds = NULL;
	fc->have_vsock = false;
}

/* Disks saved without a drive_id (a --disk VM's) are left out, and then
 * every later one too: a drive's index must stay its disk's. The root
 * flag is not saved: is_root_device reads false. */
static int adopt_drives(struct fc_config *fc, const struct vmm_config *cfg)
{
	for (int i = 0; i < cfg->nr_disks && cfg->disks[i].id; i++) {
		struct fc_drive *d = &fc->drives[fc->nr_drives];

		*d = (struct fc_drive){ .read_only = cfg->disks[i].readonly, .cache_type = "Unsafe",
					.io_sync = cfg->disks[i].aio == VIRTIO_BLK_AIO_SYNC };
		snprintf(d->id, sizeof(d->id), "%s", cfg->disks[i].id);
		if (!(d->path = strdup(cfg->disks[i].path)))
			return -ENOMEM;
		fc->nr_drives++;
	}
	return 0;
}

static int adopt_nets(struct fc_config *fc, const struct vmm_config *cfg)
{
	for (int i = 0; i < cfg->nr_nets && cfg->nets[i].id; i++) {
		struct fc_net *n = &fc->nets[fc->nr_nets];

		*n = (struct fc_net){ .have_mac = true };
		memcpy(n->mac, cfg->nets[i].mac, 6);
		snprintf(n->id, sizeof(n->id), "%s", cfg->nets[i].id);
		if (!(n->tap = strdup(cfg->nets[i].tap)))
			return -ENOMEM;
		fc->nr_nets++;
	}
	return 0;
}

int fc_adopt_restored(struct fc_config *fc, const struct vmm_config *cfg)
{
	drop_machine(fc);
	fc->vcpus = cfg->cpus;
	fc->mem_mib = cfg->mem >> 20;
	if ((cfg->kernel && !(fc->kernel = strdup(cfg->kernel))) || adopt_drives(fc, cfg) ||
	    adopt_nets(fc, cfg))
		return -ENOMEM;
	if (cfg->vsock.uds) {
		fc->have_vsock = true;
		fc->vsock_cid = (uint32_t)cfg->vsock.cid;
		if (!(fc->vsock_uds = strdup(cfg->vsock.uds)))
			return -ENOMEM;
	}
	return 0;
}

/* ---- GET bodies ---- */

static json_t *machine_config(const struct fc_config *fc)
{
	return json_pack("{s:i, s:I, s:b, s:b}", "vcpu_count", fc->vcpus, "mem_size_mib",
			 (json_int_t)fc->mem_mib, "smt", 0, "track_dirty_pages",
			 fc->track_dirty_pages);
}

static char *dump(json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;

	json_decref(v);
	return s;
}

char *fc_machine_config_json(const struct fc_config *fc)
{
	return dump(machine_config(fc));
}

/* A string or null. */
static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *drives(const struct fc_config *fc)
{
	json_t *a = json_array();

	for (int i = 0; a && i < fc->nr_drives; i++) {
		const struct fc_drive *d = &fc->drives[i];

		json_array_append_new(a, json_pack("{s:s, s:s, s:b, s:b, s:s, s:s}",
			"drive_id", d->id, "path_on_host", d->path, "is_root_device", d->root,
			"is_read_only", d->read_only, "cache_type", d->cache_type,
			"io_engine", d->io_sync ? "Sync" : "Async"));
	}
	return a;
}

static json_t *nets(const struct fc_config *fc)
{
	json_t *a = json_array();

	for (int i = 0; a && i < fc->nr_nets; i++) {
		const struct fc_net *n = &fc->nets[i];
		char mac[18];

		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
			 n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
		json_array_append_new(a, json_pack("{s:s, s:s, s:o}", "iface_id", n->id,
			"host_dev_name", n->tap, "guest_mac", str_or_null(n->have_mac ? mac : NULL)));
	}
	return a;
}

static json_t *boot_source(const struct fc_config *fc)
{
	if (!fc->kernel)
		return json_null();
	return json_pack("{s:s, s:o, s:o}", "kernel_image_path", fc->kernel, "initrd_path",
			 str_or_null(fc->initrd), "boot_args", str_or_null(fc->boot_args));
}

static json_t *optional_sections(const struct fc_config *fc, json_t *o)
{
	json_object_set_new(o, "logger", fc->log_level ?
		json_pack("{s:o, s:s}", "log_path", str_or_null(fc->log_path), "level",
			  fc->log_level) : json_null());
	json_object_set_new(o, "metrics", fc->metrics_path ?
		json_pack("{s:s}", "metrics_path", fc->metrics_path) : json_null());
	json_object_set_new(o, "vsock", fc->have_vsock ?
		json_pack("{s:I, s:s}", "guest_cid", (json_int_t)fc->vsock_cid, "uds_path",
			  fc->vsock_uds) : json_null());
	json_object_set_new(o, "entropy", fc->entropy ? json_object() : json_null());
	return o;
}

char *fc_vm_config_json(const struct fc_config *fc)
{
	json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:n, s:n}", "boot-source", boot_source(fc),
			      "drives", drives(fc), "machine-config", machine_config(fc),
			      "network-interfaces", nets(fc), "balloon", "mmds-config");

	return dump(o ? optional_sections(fc, o) : NULL);
}

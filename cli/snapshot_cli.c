/* SPDX-License-Identifier: MIT */
/* vibevmm's snapshots; see snapshot_cli.h. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/snapshot_cli.h"
#include "vm.h"

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *describe_disk(const struct disk_option *d)
{
	return json_pack("{s:o, s:o, s:b, s:i, s:i, s:i}", "id", str_or_null(d->id), "path",
			 str_or_null(d->path), "readonly", d->readonly, "num_queues", (int)d->num_queues, "cache", (int)d->cache,
			 "aio", (int)d->aio);
}

static json_t *describe_net(const struct net_option *n)
{
	char mac[18];

	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
		 n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
	return json_pack("{s:o, s:o, s:s, s:b, s:b, s:i}", "id", str_or_null(n->id), "tap",
			 str_or_null(n->tap), "mac", mac,
			 "have_mac", n->have_mac, "vhost", n->vhost, "queues", (int)n->queues);
}

char *cli_snapshot_describe(const struct vmm_config *cfg)
{
	json_t *disks = json_array(), *nets = json_array(), *root;
	char *text;

	for (int i = 0; disks && i < cfg->nr_disks; i++)
		json_array_append_new(disks, describe_disk(&cfg->disks[i]));
	for (int i = 0; nets && i < cfg->nr_nets; i++)
		json_array_append_new(nets, describe_net(&cfg->nets[i]));
	root = json_pack("{s:i, s:I, s:o, s:o, s:b, s:b, s:s, s:o, s:o, s:o, s:b, s:s}",
			 "cpus", cfg->cpus,
			 "mem", (json_int_t)cfg->mem, "kernel", str_or_null(cfg->kernel), "binary",
			 str_or_null(cfg->binary), "debugcon", cfg->debugcon, "exit_port",
			 cfg->exit_port, "console",
			 cfg->console == CONSOLE_VIRTIO ? "virtio" : "serial", "disks", disks, "nets",
			 nets, "vsock", cfg->vsock.uds ?
			 json_pack("{s:I, s:s}", "cid", (json_int_t)cfg->vsock.cid, "uds",
				   cfg->vsock.uds) : json_null(),
			 "pci", cfg->pci, "transport",
			 cfg->transport == TRANSPORT_PCI ? "pci" : "mmio");
	text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	return text;
}

static const char *opt_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int rebuild_disks(const json_t *a, struct vmm_config *cfg)
{
	size_t i;
	json_t *d;

	if (!json_is_array(a) || json_array_size(a) > CLI_MAX_DISKS)
		return -EINVAL;
	cfg->nr_disks = 0;
	json_array_foreach(a, i, d) {
		json_int_t q = 0, cache = 0, aio = 0;
		int ro = 0;
		const char *path = NULL;

		if (json_unpack(d, "{s:s, s:b, s:I, s:I, s:I}", "path", &path, "readonly", &ro,
				"num_queues", &q, "cache", &cache, "aio", &aio) ||
		    q < 0 || q > VIRTIO_BLK_MAX_QUEUES || cache < 0 || cache > VIRTIO_BLK_CACHE_NONE ||
		    aio < 0 || aio > VIRTIO_BLK_AIO_SYNC)
			return -EINVAL;
		cfg->disks[cfg->nr_disks++] = (struct disk_option){
			.id = opt_str(d, "id"), .path = path, .readonly = ro, .num_queues = (unsigned)q,
			.cache = (enum virtio_blk_cache)cache, .aio = (enum virtio_blk_aio)aio,
		};
	}
	return 0;
}

static int rebuild_nets(const json_t *a, struct vmm_config *cfg)
{
	size_t i;
	json_t *n;

	if (!json_is_array(a) || json_array_size(a) > CLI_MAX_NETS)
		return -EINVAL;
	cfg->nr_nets = 0;
	json_array_foreach(a, i, n) {
		struct net_option o = { 0 };
		const char *mac = NULL;
		unsigned m[6];
		json_int_t q = 0;

		if (json_unpack(n, "{s:s, s:s, s:b, s:b, s:I}", "tap", &o.tap, "mac", &mac,
				"have_mac", &o.have_mac, "vhost", &o.vhost, "queues", &q) ||
		    q < 0 || q > VIRTIO_NET_MAX_QUEUE_PAIRS ||
		    sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x", &m[0], &m[1], &m[2], &m[3], &m[4],
			   &m[5]) != 6)
			return -EINVAL;
		for (int k = 0; k < 6; k++)
			o.mac[k] = (uint8_t)m[k];
		o.queues = (unsigned)q;
		o.id = opt_str(n, "id");
		cfg->nets[cfg->nr_nets++] = o;
	}
	return 0;
}

static int rebuild_machine(const json_t *root, struct vmm_config *cfg)
{
	json_int_t cpus = 0, mem = 0;
	int debugcon = 0, exit_port = 0, pci = 0;
	const char *console = NULL, *transport = "mmio";

	/* pci and transport: absent from snapshots made before PCI could be */
	if (json_unpack((json_t *)root, "{s:I, s:I, s:b, s:b, s:s, s?b, s?s}", "cpus", &cpus,
			"mem", &mem, "debugcon", &debugcon, "exit_port", &exit_port, "console",
			&console, "pci", &pci, "transport", &transport) ||
	    cpus < 1 || cpus > VM_MAX_VCPUS || mem < (json_int_t)CLI_MIN_MEM ||
	    mem > (json_int_t)CLI_MAX_MEM || (strcmp(console, "serial") && strcmp(console, "virtio")) ||
	    (strcmp(transport, "mmio") && strcmp(transport, "pci")))
		return -EINVAL;
	cfg->pci = pci;
	cfg->transport = strcmp(transport, "pci") ? TRANSPORT_MMIO : TRANSPORT_PCI;
	cfg->cpus = (int)cpus;
	cfg->mem = (uint64_t)mem;
	cfg->debugcon = debugcon;
	cfg->exit_port = exit_port;
	cfg->console = strcmp(console, "virtio") ? CONSOLE_SERIAL : CONSOLE_VIRTIO;
	cfg->kernel = opt_str(root, "kernel");
	cfg->binary = opt_str(root, "binary");
	return !cfg->kernel == !cfg->binary ? -EINVAL : 0;
}

static int rebuild_vsock(const json_t *v, struct vmm_config *cfg)
{
	json_int_t cid = 0;

	cfg->vsock = (struct vsock_option){ 0 };
	if (!v || json_is_null(v))
		return 0;
	if (json_unpack((json_t *)v, "{s:I, s:s}", "cid", &cid, "uds", &cfg->vsock.uds) ||
	    cid < 3 || cid > (json_int_t)UINT32_MAX)
		return -EINVAL;
	cfg->vsock.cid = (uint64_t)cid;
	return 0;
}

int cli_snapshot_rebuild(const void *json, size_t len, struct vmm_config *cfg,
			 struct json_t **holder, char *err, size_t errlen)
{
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);

	*holder = NULL;
	if (!root || rebuild_machine(root, cfg) || rebuild_disks(json_object_get(root, "disks"), cfg) ||
	    rebuild_nets(json_object_get(root, "nets"), cfg) ||
	    rebuild_vsock(json_object_get(root, "vsock"), cfg)) {
		json_decref(root);
		snprintf(err, errlen, "the snapshot's description of the VM is not vibevmm's");
		return -EINVAL;
	}
	*holder = root;
	return 0;
}

/* The saved interface an override's key names: its iface_id, else its TAP. */
static struct net_option *overridden_net(struct vmm_config *cfg, const char *key)
{
	for (int i = 0; i < cfg->nr_nets; i++)
		if (cfg->nets[i].id && !strcmp(cfg->nets[i].id, key))
			return &cfg->nets[i];
	for (int i = 0; i < cfg->nr_nets; i++)
		if (!cfg->nets[i].id && !strcmp(cfg->nets[i].tap, key))
			return &cfg->nets[i];
	return NULL;
}

int cli_snapshot_override_nets(struct vmm_config *cfg, const struct snap_override *o, int n,
			       char *err, size_t errlen)
{
	for (int i = 0; i < n; i++) {
		struct net_option *net = overridden_net(cfg, o[i].key);

		if (!net) {
			snprintf(err, errlen, "network override %s: the snapshot has no such interface",
				 o[i].key);
			return -ENOENT;
		}
		net->tap = o[i].to;
	}
	return 0;
}

/* The saved disk an override's key names: its drive_id, else its path. */
static struct disk_option *overridden_disk(struct vmm_config *cfg, const char *key)
{
	for (int i = 0; i < cfg->nr_disks; i++)
		if (cfg->disks[i].id && !strcmp(cfg->disks[i].id, key))
			return &cfg->disks[i];
	for (int i = 0; i < cfg->nr_disks; i++)
		if (!cfg->disks[i].id && !strcmp(cfg->disks[i].path, key))
			return &cfg->disks[i];
	return NULL;
}

int cli_snapshot_override_disks(struct vmm_config *cfg, const struct snap_override *o, int n,
				char *err, size_t errlen)
{
	for (int i = 0; i < n; i++) {
		struct disk_option *d = overridden_disk(cfg, o[i].key);

		if (!d) {
			snprintf(err, errlen, "disk override %s: the snapshot has no such disk", o[i].key);
			return -ENOENT;
		}
		d->path = o[i].to;
	}
	return 0;
}

void cli_snapshot_free_holder(struct json_t *holder)
{
	json_decref(holder);
}

int cli_snapshot_path(char *buf, size_t len, const char *dir, const char *name)
{
	return (size_t)snprintf(buf, len, "%s/%s", dir, name) >= len ? -ENAMETOOLONG : 0;
}

static int open_one(const char *dir, const char *name, int *fd, char *err, size_t errlen)
{
	char path[4096];

	if (cli_snapshot_path(path, sizeof(path), dir, name))
		return snprintf(err, errlen, "--snapshot-on-signal %s: path too long", dir),
		       -ENAMETOOLONG;
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		return snprintf(err, errlen, "--snapshot-on-signal: %s: %s", path, strerror(errno)),
		       -errno;
	return 0;
}

int cli_snapshot_open(const char *dir, int *state_fd, int *mem_fd, char *err, size_t errlen)
{
	int r = open_one(dir, SNAPSHOT_STATE_FILE, state_fd, err, errlen);

	if (!r && (r = open_one(dir, SNAPSHOT_MEM_FILE, mem_fd, err, errlen))) {
		close(*state_fd);
		*state_fd = -1;
	}
	return r;
}

/* SPDX-License-Identifier: MIT */
/* vibevmm: the virtio devices of the command line, each in the machine's
 * next virtio slot (a virtio-mmio window and GSI, or a virtio-pci function). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/virtio_setup.h"
#include "devices.h"
#include "machine.h"
#include "utils.h"

struct slots {
	struct vm *vm;
	char *why;
	size_t why_len;
};

static int fail(struct slots *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct slots *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->why, s->why_len, fmt, ap);
	va_end(ap);
	return -1;
}

/* The next slot, or -1 when the machine has no more. */
static int next_slot(struct slots *s, struct virtio_slot *slot)
{
	return machine_virtio_next(s->vm, slot, s->why, s->why_len) ? -1 : 0;
}

/* Register a created device and describe it to the guest. */
static int add(struct slots *s, struct device *dev, const struct virtio_slot *slot,
	       const char *what, const char *reason)
{
	int err;

	if (!dev)
		return fail(s, "%s: %s", what, reason && *reason ? reason : "cannot create it");
	err = machine_add_virtio_in(s->vm, dev, slot);
	if (err)
		return fail(s, "%s: cannot register it: %s", what, strerror(-err));
	return 0;
}

static int add_disks(struct slots *s, const struct vmm_config *cfg,
		     struct device *disks[CLI_MAX_DISKS])
{
	for (int d = 0; d < cfg->nr_disks; d++) {
		char what[64], reason[256] = "";
		struct virtio_slot slot;

		const struct disk_option *o = &cfg->disks[d];
		struct virtio_blk_options bo = {
			.path = o->path, .readonly = o->readonly, .cache = o->cache,
			.aio = o->aio,
			.num_queues = o->num_queues ? o->num_queues : (unsigned)cfg->cpus,
		};

		snprintf(what, sizeof(what), "--disk (vd%c)", 'a' + d);
		if (next_slot(s, &slot))
			return -1;
		disks[d] = virtio_blk_create_in(s->vm, &slot, &bo, reason, sizeof(reason));
		if (add(s, disks[d], &slot, what, reason))
			return -1;
	}
	return 0;
}

/* One queue pair per vCPU, as many as a device has. */
static unsigned default_pairs(int cpus)
{
	if (cpus < 1)
		return 1;
	return cpus > VIRTIO_NET_MAX_QUEUE_PAIRS ? VIRTIO_NET_MAX_QUEUE_PAIRS : (unsigned)cpus;
}

static int add_nets(struct slots *s, const struct vmm_config *cfg)
{
	for (int i = 0; i < cfg->nr_nets; i++) {
		const struct net_option *n = &cfg->nets[i];
		char what[64], reason[256] = "";
		struct virtio_slot slot;
		struct virtio_net_options o = {
			.tap = n->tap, .mac = n->have_mac ? n->mac : NULL, .vhost = n->vhost,
			.queue_pairs = n->queues ? n->queues : default_pairs(cfg->cpus),
			.mq_fallback = !n->queues,
		};

		snprintf(what, sizeof(what), "--net tap=%s", n->tap);
		if (next_slot(s, &slot) ||
		    add(s, virtio_net_create_in(s->vm, &slot, &o, reason, sizeof(reason)),
			&slot, what, reason))
			return -1;
	}
	return 0;
}

static int add_console(struct slots *s, const struct vmm_config *cfg,
		       struct console *con)
{
	struct device *dev;
	struct virtio_slot slot;

	if (cfg->console != CONSOLE_VIRTIO)
		return 0;
	if (next_slot(s, &slot))
		return -1;
	dev = virtio_console_create_in(s->vm, &slot, STDIN_FILENO, STDOUT_FILENO);
	if (add(s, dev, &slot, "--console virtio", NULL))
		return -1;
	/* Input from a terminal, pipe or file, as for the UART. */
	if (virtio_console_attach_input(dev, console_filter, con))
		vm_debug(s->vm, "virtio console input not attached (no stdin)");
	return 0;
}

static int add_vsock(struct slots *s, const struct vmm_config *cfg)
{
	char reason[256] = "";
	struct virtio_slot slot;

	if (!cfg->vsock.uds)
		return 0;
	if (next_slot(s, &slot))
		return -1;
	return add(s, virtio_vsock_create_in(s->vm, &slot, cfg->vsock.cid, cfg->vsock.uds,
					     reason, sizeof(reason)),
		   &slot, "--vsock", reason);
}

static int add_rng(struct slots *s)
{
	struct virtio_slot slot;

	if (next_slot(s, &slot))
		return -1;
	return add(s, virtio_rng_create_in(s->vm, &slot), &slot, "virtio-rng", NULL);
}

int cli_add_virtio_devices(struct vm *vm, const struct vmm_config *cfg,
			   struct console *con, struct device *disks[CLI_MAX_DISKS],
			   char *why, size_t why_len)
{
	struct slots s = { .vm = vm, .why = why, .why_len = why_len };

	if (add_disks(&s, cfg, disks) || add_nets(&s, cfg) || add_console(&s, cfg, con) ||
	    add_vsock(&s, cfg) || add_rng(&s))
		return -1;
	return 0;
}

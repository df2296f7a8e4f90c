/* SPDX-License-Identifier: MIT */
/* vibevmm: the virtio devices of the command line, their windows and GSIs. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86_64/layout.h"
#include "cli/virtio_setup.h"
#include "devices.h"
#include "utils.h"

struct slots {
	struct vm *vm;
	struct x86_platform *plat;
	char *extra;
	size_t extra_len;
	bool cmdline_devices; /* list them as virtio_mmio.device= too */
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

/* The next window and GSI, or -1 when the platform has no more. */
static int next_slot(struct slots *s, uint64_t *base, uint32_t *gsi)
{
	int i = s->plat->nr_virtio;

	*base = 0;
	*gsi = 0;
	if (i >= X86_VIRTIO_MMIO_MAX || X86_VIRTIO_GSI_BASE + i >= X86_IOAPIC_PINS)
		return fail(s, "too many virtio devices (at most %d)",
			    MIN(X86_VIRTIO_MMIO_MAX, X86_IOAPIC_PINS - X86_VIRTIO_GSI_BASE));
	*base = X86_VIRTIO_MMIO_BASE + (uint64_t)i * X86_VIRTIO_MMIO_SIZE;
	*gsi = X86_VIRTIO_GSI_BASE + (uint32_t)i;
	return 0;
}

/* Register a created device and describe it to the guest. */
static int add(struct slots *s, struct device *dev, const char *what,
	       const char *reason)
{
	int i = s->plat->nr_virtio, err;
	size_t used = strlen(s->extra);

	if (!dev)
		return fail(s, "%s: %s", what, reason && *reason ? reason : "cannot create it");
	err = vm_register_device(s->vm, dev);
	if (err) {
		dev->destroy(dev);
		return fail(s, "%s: cannot register it: %s", what, strerror(-err));
	}
	s->plat->virtio[i].base = dev->base;
	s->plat->virtio[i].size = dev->size;
	s->plat->virtio[i].gsi = X86_VIRTIO_GSI_BASE + (uint32_t)i;
	s->plat->nr_virtio++;
	if (s->cmdline_devices && used < s->extra_len)
		snprintf(s->extra + used, s->extra_len - used, " virtio_mmio.device=4K@0x%llx:%u",
			 (unsigned long long)dev->base, X86_VIRTIO_GSI_BASE + (unsigned)i);
	return 0;
}

static int add_disks(struct slots *s, const struct vmm_config *cfg)
{
	for (int d = 0; d < cfg->nr_disks; d++) {
		char what[64], reason[256] = "";
		uint64_t base;
		uint32_t gsi;

		snprintf(what, sizeof(what), "--disk (vd%c)", 'a' + d);
		if (next_slot(s, &base, &gsi) ||
		    add(s, virtio_blk_create(s->vm, base, gsi, cfg->disks[d].path,
					     cfg->disks[d].readonly, reason, sizeof(reason)),
			what, reason))
			return -1;
	}
	return 0;
}

static int add_nets(struct slots *s, const struct vmm_config *cfg)
{
	for (int i = 0; i < cfg->nr_nets; i++) {
		const struct net_option *n = &cfg->nets[i];
		char what[64], reason[256] = "";
		uint64_t base;
		uint32_t gsi;

		snprintf(what, sizeof(what), "--net tap=%s", n->tap);
		if (next_slot(s, &base, &gsi) ||
		    add(s, virtio_net_create(s->vm, base, gsi, n->tap,
					     n->have_mac ? n->mac : NULL, reason, sizeof(reason)),
			what, reason))
			return -1;
	}
	return 0;
}

static int add_console(struct slots *s, const struct vmm_config *cfg,
		       struct console *con)
{
	struct device *dev;
	uint64_t base;
	uint32_t gsi;

	if (cfg->console != CONSOLE_VIRTIO)
		return 0;
	if (next_slot(s, &base, &gsi))
		return -1;
	dev = virtio_console_create(s->vm, base, gsi, STDIN_FILENO, STDOUT_FILENO);
	if (add(s, dev, "--console virtio", NULL))
		return -1;
	/* Input from a terminal, pipe or file, as for the UART. */
	if (virtio_console_attach_input(dev, console_filter, con))
		vm_debug(s->vm, "virtio console input not attached (no stdin)");
	return 0;
}

static int add_rng(struct slots *s)
{
	uint64_t base;
	uint32_t gsi;

	if (next_slot(s, &base, &gsi))
		return -1;
	return add(s, virtio_rng_create(s->vm, base, gsi), "virtio-rng", NULL);
}

bool cli_cmdline_has_acpi_off(const char *cmdline)
{
	const char *p = cmdline;

	while (p && *p) {
		size_t n;

		p += strspn(p, " \t\n");
		n = strcspn(p, " \t\n");
		if (n == 2 && !strncmp(p, "--", 2))
			return false; /* the rest is init's */
		if (n == 8 && !strncmp(p, "acpi=off", 8))
			return true;
		p += n;
	}
	return false;
}

int cli_add_virtio_devices(struct vm *vm, const struct vmm_config *cfg,
			   struct console *con, struct x86_platform *plat,
			   char *cmdline_extra, size_t extra_len, char *why,
			   size_t why_len)
{
	struct slots s = {
		.vm = vm, .plat = plat, .extra = cmdline_extra,
		.extra_len = extra_len, .why = why, .why_len = why_len,
		/* One description each: the DSDT's, unless the kernel is told
		 * to ignore ACPI (as QEMU's microvm does). Both at once make a
		 * kernel with VIRTIO_MMIO_CMDLINE_DEVICES probe every device
		 * twice, the second probe failing with -EBUSY. */
		.cmdline_devices = cli_cmdline_has_acpi_off(cfg->cmdline),
	};

	if (!extra_len)
		return fail(&s, "no room for the command line");
	if (add_disks(&s, cfg) || add_nets(&s, cfg) || add_console(&s, cfg, con) ||
	    add_rng(&s))
		return -1;
	return 0;
}

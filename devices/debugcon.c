/* SPDX-License-Identifier: MIT */
/* MMIO debug console: the low byte of any write at offset 0 is printed. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices.h"

struct debugcon {
	struct device dev;
	int out_fd;
};

static int debugcon_write(struct device *dev, uint64_t offset, void *data,
			  size_t size)
{
	struct debugcon *d = dev->private;

	if (offset == 0 && write(d->out_fd, data, 1) < 0)
		return -1;
	return 0;
}

static int debugcon_read(struct device *dev, uint64_t offset, void *data,
			 size_t size)
{
	memset(data, 0, size);
	return 0;
}

static void debugcon_destroy(struct device *dev)
{
	free(dev->private);
}

struct device *debugcon_create(uint64_t base, int out_fd)
{
	struct debugcon *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->out_fd = out_fd;
	d->dev = (struct device){
		.name = "debugcon", .base = base, .size = DEBUGCON_SIZE,
		.private = d, .read = debugcon_read, .write = debugcon_write,
		.destroy = debugcon_destroy, .space = DEVICE_MMIO,
	};
	return &d->dev;
}

/* SPDX-License-Identifier: MIT */
/* MMIO debug console: the low byte of any write at offset 0 is printed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "vm.h"

struct debugcon {
	struct device dev;
	struct vm_output *out;
};

static int debugcon_write(struct device *dev, uint64_t offset, void *data,
			  size_t size)
{
	struct debugcon *d = dev->private;

	if (offset == 0 && d->out)
		vm_output_write(d->out, data, 1);
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

struct device *debugcon_create(struct vm *vm, uint64_t base, int out_fd)
{
	struct debugcon *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	if (out_fd >= 0 && !(d->out = vm_output_open(vm, out_fd))) {
		free(d);
		return NULL;
	}
	d->dev = (struct device){
		.name = "debugcon", .base = base, .size = DEBUGCON_SIZE,
		.private = d, .read = debugcon_read, .write = debugcon_write,
		.destroy = debugcon_destroy, .space = DEVICE_MMIO,
		.stateless = true, /* a byte written goes out at once */
	};
	return &d->dev;
}

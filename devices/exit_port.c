/* SPDX-License-Identifier: MIT */
/* Guest exit port: the value written ends the VM and becomes its status. */
#include <stdlib.h>
#include <string.h>

#include "vm.h"

static int exit_port_write(struct device *dev, uint64_t offset, void *data,
			   size_t size)
{
	uint32_t value = 0;

	memcpy(&value, data, size < sizeof(value) ? size : sizeof(value));
	vm_request_exit(dev->vm, VCPU_EXIT_GUEST_EXIT, (int)value);
	return 0;
}

static void exit_port_destroy(struct device *dev)
{
	free(dev);
}

static struct device *create(enum device_space space, uint64_t base, uint64_t size)
{
	struct device *dev = calloc(1, sizeof(*dev));

	if (!dev)
		return NULL;
	*dev = (struct device){
		.name = "exit-port", .base = base, .size = size,
		.write = exit_port_write, .destroy = exit_port_destroy,
		.space = space, .stateless = true,
	};
	return dev;
}

struct device *exit_port_create(uint16_t port)
{
	return create(DEVICE_PIO, port, 1);
}

struct device *exit_mmio_create(uint64_t base)
{
	return create(DEVICE_MMIO, base, EXIT_MMIO_SIZE);
}

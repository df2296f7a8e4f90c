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

struct device *exit_port_create(uint16_t port)
{
	struct device *dev = calloc(1, sizeof(*dev));

	if (!dev)
		return NULL;
	*dev = (struct device){
		.name = "exit-port", .base = port, .size = 1,
		.write = exit_port_write, .destroy = exit_port_destroy,
		.space = DEVICE_PIO,
	};
	return dev;
}

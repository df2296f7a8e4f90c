/* SPDX-License-Identifier: MIT */
/*
 * pvpanic: a one-port device through which a guest kernel says it
 * panicked (QEMU's ISA pvpanic, ACPI id "QEMU0001"; Linux's pvpanic-mmio
 * driver takes the port from the DSDT). A panic ends the VM with
 * VCPU_EXIT_PANIC, so the VMM can report a crash instead of a reboot (with
 * panic=-1) or a guest that hangs forever (panic=0).
 *
 * Reading the port returns the events the device understands; Linux only
 * reports those. "Crash kernel loaded" means a kdump kernel is about to
 * take over: the VM keeps running for it.
 */
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "utils.h"
#include "vm.h"

#define PVPANIC_PANICKED 0x1
#define PVPANIC_CRASH_LOADED 0x2

static int pvpanic_read(struct device *dev, uint64_t offset, void *data,
			size_t size)
{
	memset(data, 0, size);
	if (size)
		*(uint8_t *)data = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
	return 0;
}

static int pvpanic_write(struct device *dev, uint64_t offset, void *data,
			 size_t size)
{
	uint8_t events = size ? *(uint8_t *)data : 0;

	if (events & PVPANIC_PANICKED)
		vm_request_exit(dev->vm, VCPU_EXIT_PANIC, 0);
	else if (events & PVPANIC_CRASH_LOADED)
		vm_info(dev->vm, "guest panicked; its crash kernel takes over");
	return 0;
}

static void pvpanic_destroy(struct device *dev)
{
	free(dev);
}

struct device *pvpanic_create(uint16_t port)
{
	struct device *dev = calloc(1, sizeof(*dev));

	if (!dev)
		return NULL;
	*dev = (struct device){
		.name = "pvpanic", .base = port, .size = 1,
		.read = pvpanic_read, .write = pvpanic_write,
		.destroy = pvpanic_destroy, .space = DEVICE_PIO,
		.stateless = true, /* events end the VM or are logged */
	};
	return dev;
}

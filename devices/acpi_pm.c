/* SPDX-License-Identifier: MIT */
/*
 * The one-port ACPI PM register of the hardware-reduced platform: the FADT
 * points RESET_REG and SLEEP_CONTROL/STATUS_REG here (see
 * arch/x86_64/acpi.c). It has no state (sleep status reads 0, writes act
 * at once), so it needs no lock and nothing in a snapshot.
 */
#include <stdlib.h>
#include <string.h>

#include "arch/x86_64/platform.h"
#include "devices.h"
#include "utils.h"
#include "vm.h"

static int acpi_pm_read(struct device *dev, uint64_t offset, void *data,
			size_t size)
{
	/* Sleep status: WAK_STS (bit 7) reads 0; the guest never wakes. */
	memset(data, 0, size);
	return 0;
}

static int acpi_pm_write(struct device *dev, uint64_t offset, void *data,
			 size_t size)
{
	uint8_t v;

	/* The FADT declares an 8-bit register; wider writes use their low
	 * byte, as on the little-endian bus. */
	if (size == 0)
		return 0;
	memcpy(&v, data, 1);
	if (v == ACPI_PM_RESET_VALUE) {
		vm_info(dev->vm, "acpi-pm: the guest wrote the ACPI reset register");
		vm_request_exit(dev->vm, VCPU_EXIT_RESET, 0);
	} else if ((v & ACPI_PM_SLP_EN) &&
		   ((v & ACPI_PM_SLP_TYP_MASK) >> ACPI_PM_SLP_TYP_SHIFT) ==
			   ACPI_PM_SLP_TYP_S5) {
		vm_request_exit(dev->vm, VCPU_EXIT_POWEROFF, 0);
	}
	/* Anything else (Linux first writes WAK_STS to clear it) is ignored. */
	return 0;
}

static void acpi_pm_destroy(struct device *dev)
{
	free(dev);
}

struct device *acpi_pm_create(uint16_t port)
{
	struct device *dev = calloc(1, sizeof(*dev));

	if (!dev)
		return NULL;
	*dev = (struct device){
		.name = "acpi-pm", .base = port, .size = 1,
		.read = acpi_pm_read, .write = acpi_pm_write,
		.destroy = acpi_pm_destroy, .space = DEVICE_PIO,
		.stateless = true,
	};
	return dev;
}

/* SPDX-License-Identifier: MIT */
/*
 * x86 platform port-I/O devices. These prototypes are meant to move into
 * include/devices.h; until then include this header.
 */
#ifndef VIBEVMM_PLATFORM_DEVICES_H
#define VIBEVMM_PLATFORM_DEVICES_H

#include <stdint.h>

#include "devices.h"

/*
 * ACPI PM register (one port, normally X86_ACPI_PM_PORT) that the FADT names
 * as RESET_REG, SLEEP_CONTROL_REG and SLEEP_STATUS_REG: writing the reset
 * value 1 ends the VM with VCPU_EXIT_RESET, writing SLP_EN with SLP_TYP 5
 * (the DSDT's \_S5_) with VCPU_EXIT_POWEROFF. Reads return 0.
 */
struct device *acpi_pm_create(uint16_t port);

/*
 * A minimal i8042 keyboard controller on ports 0x60-0x64 with nothing
 * plugged in: enough of the controller for Linux's probe to finish quickly
 * (self-test, command byte, output port), and the reset line: command 0xFE
 * (or any output-port write or pulse that drops bit 0) ends the VM with
 * VCPU_EXIT_RESET.
 */
#define I8042_BASE_PORT 0x60
#define I8042_NR_PORTS 5
struct device *i8042_create(void);

#endif

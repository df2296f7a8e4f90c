/* SPDX-License-Identifier: MIT */
/* Raw binaries: bytes copied to a guest address, nothing parsed. */
#include <errno.h>

#include "boot.h"
#include "mm.h"

int boot_load_raw(struct vm *vm, uint64_t gpa, const uint8_t *buf, size_t len)
{
	if (!vm_gpa_to_hva(vm, gpa, len ? len : 1))
		return -ERANGE;
	return vm_write_guest(vm, gpa, buf, len);
}

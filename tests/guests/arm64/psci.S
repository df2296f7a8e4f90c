/* psci: x19 = PSCI_VERSION's result, then SYSTEM_RESET when the host set
 * x20 to 1, else SYSTEM_OFF. */
	.include "guest.inc"
_start:
	psci PSCI_VERSION
	mov x19, x0
	cbnz x20, reset
	psci PSCI_SYSTEM_OFF
reset:
	psci PSCI_SYSTEM_RESET

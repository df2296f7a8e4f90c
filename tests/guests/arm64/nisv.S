/* nisv: a load pair from the test device. A data abort without a valid
 * instruction syndrome: KVM cannot emulate it, the run fails (not the VMM). */
	.include "guest.inc"
_start:
	movl x20, TESTDEV_MMIO
	ldp x1, x2, [x20]
	psci PSCI_SYSTEM_OFF

/* snapcount: counts in x19, for the pause and snapshot tests. x19 starts
 * at what a 32-bit load from the test device (offset 0) gives and goes up
 * by one a round; each round stores it (64-bit) to the test device at
 * offset 8 and to RAM at COUNTER. The count lives in the vCPU's registers:
 * a vCPU whose state was not carried over starts again from the device's
 * value. */
	.include "guest.inc"
	.set COUNTER, 0x200000
_start:
	movl x20, TESTDEV_MMIO
	movl x21, COUNTER
	ldr w19, [x20]
1:	add x19, x19, #1
	str x19, [x20, #8]
	str x19, [x21]
	b 1b

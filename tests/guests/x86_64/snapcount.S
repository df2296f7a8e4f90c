/* Counts in a register, for the snapshot tests: R12 starts at what a
 * 32-bit read of the test port gives and goes up by one a round; each
 * round copies it to the 64-bit word COUNTERS + 8 * n (RDI = n). So the
 * count lives in the vCPU's registers, not in memory: a vCPU whose state
 * was not carried over starts again from the port's value. */
	.include "guest.inc"
	.set COUNTERS, 0x200000
	.text
_start:
	lea COUNTERS(,%rdi,8), %rbx
	mov $TESTDEV_PORT, %dx
	in %dx, %eax
	mov %eax, %r12d
1:	inc %r12
	mov %r12, (%rbx)
	jmp 1b

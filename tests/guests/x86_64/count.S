/* Counts for ever: vCPU n increments the 64-bit counter at
 * COUNTERS + 8 * n (RDI = n), so the host sees whether it runs. */
	.include "guest.inc"
	.set COUNTERS, 0x200000
	.text
_start:
	lea COUNTERS(,%rdi,8), %rbx
1:	incq (%rbx)
	jmp 1b

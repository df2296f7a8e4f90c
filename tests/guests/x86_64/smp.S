/* Every vCPU writes its index (RDI) to the barrier port, then halts. */
	.include "guest.inc"
	.text
_start:
	mov %edi, %eax
	mov $(TESTDEV_PORT + 0x10), %dx
	out %eax, %dx
	hlt

/* devmem: forever, reads the 4 bytes at TESTDEV_MMIO + 0x1000 (device
 * memory the harness maps and unmaps there, or else a test device's MMIO)
 * and writes them to TESTDEV_PORT, an exit per round. */
	.include "guest.inc"
	.text
_start:
	mov $TESTDEV_MMIO + 0x1000, %rbx
	mov $TESTDEV_PORT, %dx
1:	movl (%rbx), %eax
	out %eax, %dx
	jmp 1b

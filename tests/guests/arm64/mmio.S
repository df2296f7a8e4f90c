/* mmio: stores of 1, 2, 4 and 8 bytes to the test device (offsets 0x00 to
 * 0x30), loads of each width (0x40 to 0x70) into x8-x11, a load from an
 * unclaimed address (past the device's 4 KiB) into x12; then PSCI
 * SYSTEM_OFF. */
	.include "guest.inc"
_start:
	movl x20, TESTDEV_MMIO
	mov w1, #0x11
	strb w1, [x20, #0x00]
	mov w1, #0x2233
	strh w1, [x20, #0x10]
	movl w1, 0x44556677
	str w1, [x20, #0x20]
	movl x1, 0xccddeeff
	movk x1, #0xaabb, lsl #32
	movk x1, #0x8899, lsl #48
	str x1, [x20, #0x30]
	ldrb w8, [x20, #0x40]
	ldrh w9, [x20, #0x50]
	ldr w10, [x20, #0x60]
	ldr x11, [x20, #0x70]
	movl x21, TESTDEV_MMIO + 0x1000
	ldr x12, [x21]
	psci PSCI_SYSTEM_OFF

/* regs: computes from the registers the host set and ends with PSCI
 * SYSTEM_OFF (an SMCCC call: x0-x3 come back with its results, so the
 * guest leaves them alone); the host reads back:
 *   x5 = x4 + x5, x7 = x6 ^ x7, x9 = x8 << 4, x10 = the sp it was given,
 *   sp -= 64, x11 = x0 (the vCPU id), x12 = the address of `after`,
 *   x29 = x28 - 1, x13-x27 and x30 kept. */
	.include "guest.inc"
_start:
	add x5, x4, x5
	eor x7, x6, x7
	lsl x9, x8, #4
	mov x10, sp
	sub sp, sp, #64
	mov x11, x0
	adr x12, after
	sub x29, x28, #1
	psci PSCI_SYSTEM_OFF
after:
	b after

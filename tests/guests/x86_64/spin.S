/* Spins forever: only vm_stop() ends it. */
	.include "guest.inc"
	.text
_start:
1:	inc %rax
	jmp 1b

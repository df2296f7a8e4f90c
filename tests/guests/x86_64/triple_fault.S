/* An exception with an empty IDT: #GP -> #DF -> triple fault. */
	.include "guest.inc"
	.text
_start:
	lidt idtr(%rip)
	ud2
idtr:	.word 0
	.quad 0

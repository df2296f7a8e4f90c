/* spin: counts in x1 for ever, with no exits (vm_stop must kick it). */
	.include "guest.inc"
_start:
	add x1, x1, #1
	b _start

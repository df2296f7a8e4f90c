/* fwait: real CPUs run it; PVM's instruction emulator cannot (internal
 * error with the instruction bytes). Either outcome is checked. */
	.include "guest.inc"
	.text
_start:
	fwait
	exit_guest 7

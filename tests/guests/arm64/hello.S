/* hello: a line to the debug console, a line to the 16550, exit status 42.
 * Also what `vibevmm --binary` runs in the CLI tests. */
	.include "guest.inc"
_start:
	puts msg_debugcon, DEBUGCON
	puts msg_serial, UART
	exit_guest 42
msg_debugcon:
	.asciz "hello from debugcon\n"
msg_serial:
	.asciz "hello from serial\n"

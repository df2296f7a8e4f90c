/* SPDX-License-Identifier: MIT */
/* The host terminal as the guest console: raw mode and the Ctrl-A escape. */
#ifndef VIBEVMM_CLI_CONSOLE_H
#define VIBEVMM_CLI_CONSOLE_H

#include <stdbool.h>
#include <stdint.h>
#include <termios.h>

struct vm;

struct console {
	int in_fd;
	bool raw;            /* terminal switched to raw mode; restore on exit */
	struct termios saved;
	bool escape;         /* Ctrl-A seen, waiting for the command key */
	bool quit_requested;
	struct vm *vm;
};

/* Put in_fd in raw mode if it is a terminal. */
void console_open(struct console *c, int in_fd);
void console_restore(struct console *c);

/*
 * Input filter: handles Ctrl-A x (quit) and Ctrl-A Ctrl-A (a literal
 * Ctrl-A); returns the bytes left for the guest, compacted in buf.
 */
int console_filter(void *opaque, uint8_t *buf, int len);

#endif

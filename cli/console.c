/* SPDX-License-Identifier: MIT */
#include <unistd.h>

#include "cli/console.h"
#include "vm.h"

#define CTRL_A 0x01

void console_open(struct console *c, int in_fd)
{
	struct termios raw;

	c->in_fd = in_fd;
	c->raw = false;
	if (!isatty(in_fd) || tcgetattr(in_fd, &c->saved) < 0)
		return;
	raw = c->saved;
	/* Everything goes to the guest, Ctrl-C included; output processing
	 * stays on so the guest's "\n" still returns the carriage. */
	cfmakeraw(&raw);
	raw.c_oflag |= OPOST;
	if (tcsetattr(in_fd, TCSANOW, &raw) == 0)
		c->raw = true;
}

void console_restore(struct console *c)
{
	if (c->raw)
		tcsetattr(c->in_fd, TCSANOW, &c->saved);
	c->raw = false;
}

int console_filter(void *opaque, uint8_t *buf, int len)
{
	struct console *c = opaque;
	int out = 0;

	for (int i = 0; i < len; i++) {
		uint8_t b = buf[i];

		if (!c->escape && b == CTRL_A) {
			c->escape = true;
			continue;
		}
		if (c->escape) {
			c->escape = false;
			if (b == 'x' || b == 'X') {
				c->quit_requested = true;
				vm_request_exit(c->vm, VCPU_EXIT_STOPPED, 0);
				return out;
			}
			if (b != CTRL_A)
				continue; /* unknown command: swallowed */
		}
		buf[out++] = b;
	}
	return out;
}

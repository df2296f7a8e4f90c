/* SPDX-License-Identifier: MIT */
/* Hosts without an os/ port of their own: threads stay unnamed and there is
 * no sandbox (vm_enable_seccomp says -ENOTSUP). */
#include <errno.h>
#include <stdio.h>

#include "os/os.h"

void os_thread_set_name(const char *name)
{
	(void)name;
}

const char *os_thread_kind_name(enum os_thread_kind kind)
{
	(void)kind;
	return "?";
}

int os_sandbox_create(struct os_sandbox **out, char *why, size_t why_len)
{
	*out = NULL;
	snprintf(why, why_len, "no system-call sandbox on this OS");
	return -ENOTSUP;
}

int os_sandbox_confine(const struct os_sandbox *sb, enum os_thread_kind kind)
{
	(void)sb;
	(void)kind;
	return -ENOTSUP;
}

void os_sandbox_free(struct os_sandbox *sb)
{
	(void)sb;
}

void os_sandbox_size(const struct os_sandbox *sb, enum os_thread_kind kind,
		     struct os_sandbox_size *size)
{
	(void)sb;
	(void)kind;
	*size = (struct os_sandbox_size){ 0 };
}

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the snapshot state file's reader (core/snapfile.c):
 * the input as it is, and again with its checksums made right, so that the
 * fuzzer gets past them into the section parser. A file that parses must
 * have every section inside the input, and reading each one to its end
 * must work.
 *
 * FUZZ_SRCS: core/snapfile.c core/util.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/snapfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void check(const uint8_t *buf, size_t len)
{
	for (int arch = SNAP_ARCH_X86_64; arch <= SNAP_ARCH_ARM64; arch++) {
		struct snap_file f;
		char why[256];

		if (snap_parse(buf, len, (enum snap_arch)arch, &f, why, sizeof(why)))
			continue;
		for (unsigned i = 0; i < f.nr; i++) {
			const struct snap_section *s = &f.sections[i];
			struct snap_cursor c = snap_cursor_of(s);

			if (s->payload < buf || s->payload + s->len > buf + len ||
			    snap_find(&f, s->tag, s->instance) != s)
				abort();
			while (!snap_cursor_done(&c))
				snap_get_u8(&c);
		}
		snap_file_free(&f);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private copy, exactly `size` long: ASan sees any read past it. */
	uint8_t *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	check(buf, size);
	if (size >= SNAP_HEADER_LEN) {
		put32(buf + 24, (uint32_t)crc32(0, buf + SNAP_HEADER_LEN,
						(uInt)(size - SNAP_HEADER_LEN)));
		put32(buf + 28, (uint32_t)crc32(0, buf, 28));
		check(buf, size);
	}
	free(buf);
	return 0;
}

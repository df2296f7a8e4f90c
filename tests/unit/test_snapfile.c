/* SPDX-License-Identifier: MIT */
/* The snapshot state file's container (core/snapfile.c): a round trip, and
 * every truncation, every flipped bit, another version or arch, a section
 * twice, one past the end, dirty padding: each refused with its reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/snapfile.h"

/* Three sections: 13 bytes (padded to 16), an empty one, a u64 pair. */
static void sample(uint8_t **file, size_t *len)
{
	struct snap_writer w;
	struct snap_buf b = { 0 };

	snap_writer_init(&w, SNAP_ARCH_X86_64);
	snap_add(&w, 7, 0, "thirteen byte", 13);
	snap_add(&w, 7, 1, NULL, 0);
	snap_put_u64(&b, 0x1122334455667788ULL);
	snap_put_u32(&b, 0xdeadbeef);
	snap_put_u16(&b, 0xcafe);
	snap_put_u8(&b, 0x5a);
	assert_false(b.failed);
	snap_add(&w, 9, 3, b.data, b.len);
	snap_buf_free(&b);
	assert_int_equal(snap_file_bytes(&w, file, len), 0);
	snap_writer_free(&w);
}

static void test_round_trip(void **state)
{
	struct snap_file f;
	const struct snap_section *s;
	struct snap_cursor c;
	uint8_t *file, tail[2];
	size_t len;
	char why[256] = "";

	sample(&file, &len);
	assert_int_equal(len, SNAP_HEADER_LEN + (16 + 16) + 16 + (16 + 16));
	assert_int_equal(snap_parse(file, len, SNAP_ARCH_X86_64, &f, why, sizeof(why)), 0);
	assert_int_equal(f.nr, 3);
	s = snap_find(&f, 7, 0);
	assert_non_null(s);
	assert_int_equal(s->len, 13);
	assert_memory_equal(s->payload, "thirteen byte", 13);
	assert_non_null(snap_find(&f, 7, 1));
	assert_null(snap_find(&f, 7, 2));
	s = snap_find(&f, 9, 3);
	assert_non_null(s);
	c = snap_cursor_of(s);
	assert_true(snap_get_u64(&c) == 0x1122334455667788ULL);
	assert_int_equal(snap_get_u32(&c), 0xdeadbeef);
	assert_int_equal(snap_get_u16(&c), 0xcafe);
	assert_int_equal(snap_get_u8(&c), 0x5a);
	assert_true(snap_cursor_done(&c));
	/* reading past the end: zeros, and the cursor says so */
	snap_get_bytes(&c, tail, sizeof(tail));
	assert_int_equal(tail[0] | tail[1], 0);
	assert_int_equal(snap_get_u32(&c), 0);
	assert_false(snap_cursor_done(&c));
	snap_file_free(&f);
	free(file);
}

static int parse(uint8_t *file, size_t len, char *why, size_t why_len)
{
	struct snap_file f;
	int r = snap_parse(file, len, SNAP_ARCH_X86_64, &f, why, why_len);

	snap_file_free(&f);
	return r;
}

static void test_every_truncation_and_flip_refused(void **state)
{
	uint8_t *file;
	size_t len;
	char why[256];

	sample(&file, &len);
	for (size_t n = 0; n < len; n++)
		assert_int_equal(parse(file, n, why, sizeof(why)), -EINVAL);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			file[i] ^= (uint8_t)(1 << bit);
			if (parse(file, len, why, sizeof(why)) != -EINVAL)
				fail_msg("byte %zu bit %d flipped: accepted", i, bit);
			file[i] ^= (uint8_t)(1 << bit);
		}
	}
	assert_int_equal(parse(file, len, why, sizeof(why)), 0);
	free(file);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Re-seal a header (or body) that a test changed on purpose. */
static void reseal(uint8_t *file, size_t len)
{
	put32(file + 24, (uint32_t)crc32(0, file + SNAP_HEADER_LEN, (uInt)(len - SNAP_HEADER_LEN)));
	put32(file + 28, (uint32_t)crc32(0, file, 28));
}

static void test_reasons(void **state)
{
	uint8_t *file;
	size_t len;
	char why[256];
	struct snap_file f;

	sample(&file, &len);
	assert_int_equal(snap_parse(file, len, SNAP_ARCH_ARM64, &f, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "snapshot of an x86_64 VM (arch 1); this is arm64");
	put32(file + 8, 99);
	reseal(file, len);
	assert_int_equal(parse(file, len, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "snapshot format version 99; this vibevmm reads version 1");
	put32(file + 8, SNAP_VERSION);
	/* section 7/0's length grown past the end */
	put32(file + SNAP_HEADER_LEN + 8, 1000);
	reseal(file, len);
	assert_int_equal(parse(file, len, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "snapshot section 7/0 runs past the end");
	put32(file + SNAP_HEADER_LEN + 8, 13);
	/* its padding dirty */
	file[SNAP_HEADER_LEN + 16 + 13] = 1;
	reseal(file, len);
	assert_int_equal(parse(file, len, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "snapshot section 7/0: bad padding");
	file[SNAP_HEADER_LEN + 16 + 13] = 0;
	/* section 7/1 renamed 7/0: twice */
	put32(file + SNAP_HEADER_LEN + 32 + 4, 0);
	reseal(file, len);
	assert_int_equal(parse(file, len, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "snapshot section 7/0 appears twice");
	put32(file + SNAP_HEADER_LEN + 32 + 4, 1);
	reseal(file, len);
	assert_int_equal(parse(file, len, why, sizeof(why)), 0);
	assert_int_equal(parse(file, 7, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "not a vibevmm snapshot state file");
	free(file);
}

static void test_empty_file_of_sections(void **state)
{
	struct snap_writer w;
	struct snap_file f;
	uint8_t *file;
	size_t len;
	char why[256];

	snap_writer_init(&w, SNAP_ARCH_ARM64);
	assert_int_equal(snap_file_bytes(&w, &file, &len), 0);
	assert_int_equal(len, SNAP_HEADER_LEN);
	assert_int_equal(snap_parse(file, len, SNAP_ARCH_ARM64, &f, why, sizeof(why)), 0);
	assert_int_equal(f.nr, 0);
	snap_file_free(&f);
	snap_writer_free(&w);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_every_truncation_and_flip_refused),
		cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_empty_file_of_sections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* The decompressed-kernel cache (boot/kcache.c) and its key (boot/sha256.c):
 * miss, store and hit, damaged entries ignored and replaced. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot/kcache.h"

struct fixture {
	char dir[64];   /* DIR/a/b: the cache creates the missing levels */
	char cache[96];
	uint8_t key[SHA256_LEN];
	uint8_t data[100000];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/vibevmm-kcache-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->cache, sizeof(f->cache), "%s/a/b", f->dir);
	for (size_t i = 0; i < sizeof(f->data); i++)
		f->data[i] = (uint8_t)(i * 7 + (i >> 8));
	assert_int_equal(sha256("compressed payload", 18, f->key), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void entry_path(const struct fixture *f, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/", f->cache);

	for (int i = 0; i < SHA256_LEN; i++)
		n += snprintf(buf + n, len - (size_t)n, "%02x", f->key[i]);
	snprintf(buf + n, len - (size_t)n, ".vmlinux");
}

static void test_sha256_known_answers(void **state)
{
	static const uint8_t abc[SHA256_LEN] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde,
		0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
		0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	static const uint8_t empty_head[4] = { 0xe3, 0xb0, 0xc4, 0x42 };
	/* 56 bytes: the length no longer fits the first padding block */
	static const uint8_t two_blocks_head[4] = { 0x24, 0x8d, 0x6a, 0x61 };
	uint8_t out[SHA256_LEN];

	assert_int_equal(sha256("abc", 3, out), 0);
	assert_memory_equal(out, abc, SHA256_LEN);
	assert_int_equal(sha256("", 0, out), 0);
	assert_memory_equal(out, empty_head, 4);
	assert_int_equal(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, out), 0);
	assert_memory_equal(out, two_blocks_head, 4);
}

static void test_miss_store_hit(void **state)
{
	struct fixture *f = *state;
	uint8_t *out = NULL;
	size_t len = 0;

	assert_int_equal(kcache_lookup(f->cache, f->key, &out, &len), -ENOENT);
	assert_int_equal(kcache_store(f->cache, f->key, f->data, sizeof(f->data)), 0);
	assert_int_equal(kcache_lookup(f->cache, f->key, &out, &len), 0);
	assert_int_equal(len, sizeof(f->data));
	assert_memory_equal(out, f->data, len);
	free(out);
	/* another key is another entry */
	f->key[0] ^= 1;
	assert_int_equal(kcache_lookup(f->cache, f->key, &out, &len), -ENOENT);
}

static void damage(const struct fixture *f, off_t off, int truncate_to)
{
	char path[256];
	int fd;
	uint8_t b;

	entry_path(f, path, sizeof(path));
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	if (truncate_to >= 0) {
		assert_int_equal(ftruncate(fd, truncate_to), 0);
	} else {
		assert_int_equal(pread(fd, &b, 1, off), 1);
		b ^= 0x40;
		assert_int_equal(pwrite(fd, &b, 1, off), 1);
	}
	close(fd);
}

/* A flipped data byte, a flipped header byte, a cut-off file: each is
 * -EBADMSG (a miss to the caller), and a new store replaces the entry. */
static void test_damaged_entries_ignored_and_replaced(void **state)
{
	struct fixture *f = *state;
	const struct { off_t off; int trunc; } cases[] = {
		{ 24 + 5000, -1 }, { 2, -1 }, { 9, -1 }, { 0, 24 + 999 }, { 0, 10 },
	};
	uint8_t *out = NULL;
	size_t len = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(kcache_store(f->cache, f->key, f->data, sizeof(f->data)), 0);
		damage(f, cases[i].off, cases[i].trunc);
		assert_int_equal(kcache_lookup(f->cache, f->key, &out, &len), -EBADMSG);
	}
	assert_int_equal(kcache_store(f->cache, f->key, f->data, sizeof(f->data)), 0);
	assert_int_equal(kcache_lookup(f->cache, f->key, &out, &len), 0);
	assert_memory_equal(out, f->data, sizeof(f->data));
	free(out);
}

/* Stores go through a temporary file renamed into place: none is left. */
static void test_no_temporary_files_left(void **state)
{
	struct fixture *f = *state;
	char cmd[256];

	assert_int_equal(kcache_store(f->cache, f->key, f->data, 10), 0);
	assert_int_equal(kcache_store(f->cache, f->key, f->data, 20), 0);
	snprintf(cmd, sizeof(cmd), "test $(ls '%s' | wc -l) = 1 && ! ls '%s' | grep -q tmp",
		 f->cache, f->cache);
	assert_int_equal(system(cmd), 0);
}

static void test_unwritable_cache_fails_cleanly(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(kcache_store("/proc/vibevmm-no/kernels", f->key, f->data, 10) < 0, 1);
	assert_int_equal(kcache_lookup(NULL, f->key, NULL, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_known_answers),
		cmocka_unit_test_setup_teardown(test_miss_store_hit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_entries_ignored_and_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_temporary_files_left, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_cache_fails_cleanly, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Kernel image parsers (boot/): synthetic ELF and bzImage files built in
 * memory, every compression Linux uses, malformed variants that must fail
 * cleanly, and a real Debian kernel when one is cached.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "boot.h"
#include "vm.h"

#include "elf_image.h"


/* Parse a copy of exactly `len` bytes, so ASan sees any read past the end. */
static int parse_copy(const uint8_t *b, size_t len, int as_is)
{
	struct boot_options opts = { .bzimage_as_is = as_is };
	struct kernel_image img;
	uint8_t *copy = malloc(len ? len : 1);
	int ret;

	assert_non_null(copy);
	memcpy(copy, b, len);
	ret = boot_parse_kernel(copy, len, &opts, &img);
	kernel_image_free(&img);
	free(copy);
	return ret;
}

static void check_elf_segments(const struct kernel_image *img,
			       const uint8_t *elf)
{
	assert_int_equal(img->nr_segments, 2);
	assert_int_equal(img->segments[0].gpa, SEG0_GPA);
	assert_int_equal(img->segments[0].file_size, SEG_FILESZ);
	assert_int_equal(img->segments[0].mem_size, 0x1000);
	assert_memory_equal(img->segments[0].data, elf + SEG0_OFF, SEG_FILESZ);
	assert_int_equal(img->segments[1].gpa, SEG1_GPA);
	assert_int_equal(img->segments[1].file_size, SEG_FILESZ);
	assert_int_equal(img->segments[1].mem_size, 0x2000);
	assert_memory_equal(img->segments[1].data, elf + SEG1_OFF, SEG_FILESZ);
}

/* ---- ELF tests ---- */

static void test_elf_pvh(void **state)
{
	int desc_size = *(const int *)*state;
	uint8_t b[ELF_LEN];
	struct kernel_image img;

	make_elf(b, desc_size);
	assert_int_equal(boot_detect_format(b, sizeof(b)), KERNEL_FORMAT_ELF);
	assert_int_equal(boot_parse_kernel(b, sizeof(b), NULL, &img), 0);
	assert_int_equal(img.format, KERNEL_FORMAT_ELF_PVH);
	assert_int_equal(img.entry, SEG0_GPA);
	assert_int_equal(img.pvh_entry, PVH_ENTRY);
	check_elf_segments(&img, b);
	/* The segments point into the caller's buffer. */
	assert_ptr_equal(img.segments[0].data, b + SEG0_OFF);
	assert_null(img.setup_header);
	assert_null(img.owned);
	assert_int_equal(img.decompressed, 0);
	kernel_image_free(&img);
}

static void test_elf_plain(void **state)
{
	uint8_t b[ELF_LEN];
	struct kernel_image img;

	make_elf(b, 0);
	assert_int_equal(boot_parse_kernel(b, sizeof(b), NULL, &img), 0);
	assert_int_equal(img.format, KERNEL_FORMAT_ELF);
	assert_int_equal(img.pvh_entry, 0);
	assert_int_equal(img.entry, SEG0_GPA);
	check_elf_segments(&img, b);
	kernel_image_free(&img);
}

static void test_elf_virtual_entry(void **state)
{
	uint8_t b[ELF_LEN];
	struct kernel_image img;

	make_elf(b, 4);
	put_le64(b + 24, SEG1_VADDR + 0x1234);
	assert_int_equal(boot_parse_kernel(b, sizeof(b), NULL, &img), 0);
	assert_int_equal(img.entry, SEG1_GPA + 0x1234);
	kernel_image_free(&img);
}

/* A bss-only segment and an empty one: the first is placed, the second not. */
static void test_elf_bss_and_empty(void **state)
{
	uint8_t b[ELF_LEN];
	struct kernel_image img;

	make_elf(b, 0);
	put_phdr(b + PHDR(1), PT_LOAD, 0xdeadbeef, 0, SEG1_GPA, 0, 0x3000);
	put_phdr(b + PHDR(2), PT_LOAD, 0xdeadbeef, 0, 0x5000000, 0, 0);
	assert_int_equal(boot_parse_kernel(b, sizeof(b), NULL, &img), 0);
	assert_int_equal(img.nr_segments, 2);
	assert_int_equal(img.segments[1].file_size, 0);
	assert_int_equal(img.segments[1].mem_size, 0x3000);
	assert_non_null(img.segments[1].data);
	kernel_image_free(&img);
}


static void test_elf_truncated(void **state)
{
	uint8_t b[ELF_LEN];

	make_elf(b, 4);
	for (size_t len = 0; len < sizeof(b); len++)
		assert_int_equal(parse_copy(b, len, 0), -EINVAL);
	assert_int_equal(parse_copy(b, sizeof(b), 0), 0);
}

/* One malformed variant: the offset/value to patch and how wide it is. */
struct elf_patch {
	const char *what;
	size_t off;
	int width; /* 1, 2, 4 or 8 bytes */
	uint64_t val;
};

static const struct elf_patch bad_elves[] = {
	{ "class 32", 4, 1, 1 },
	{ "big endian", 5, 1, 2 },
	{ "ET_REL", 16, 2, 1 },
	{ "EM_386", 18, 2, 3 },
	{ "entry outside", 24, 8, 0x5000000 },
	{ "virtual entry outside", 24, 8, 0xffffffff90000000ull },
	{ "phoff past end", 32, 8, ELF_LEN - 100 },
	{ "phoff overflow", 32, 8, 0xffffffffffffffc0ull },
	{ "phentsize small", 54, 2, 32 },
	{ "phnum huge", 56, 2, 0xffff },
	{ "no PT_LOAD", PHDR(0), 4, 0 },
	{ "offset overflow", PHDR(0) + 8, 8, 0xffffffffffffff00ull },
	{ "data past end", PHDR(1) + 8, 8, SEG1_OFF + 1 },
	{ "filesz past end", PHDR(1) + 32, 8, SEG_FILESZ + 1 },
	{ "filesz > memsz", PHDR(0) + 40, 8, SEG_FILESZ - 1 },
	{ "overlap", PHDR(1) + 24, 8, SEG0_GPA + 0x800 },
	{ "overlap below", PHDR(1) + 24, 8, SEG0_GPA - 0x1000 },
	{ "paddr wraps", PHDR(1) + 24, 8, 0xfffffffffffff000ull },
	{ "note outside", PHDR(2) + 8, 8, 0xfffffffffffffff0ull },
	{ "note namesz huge", NOTE_OFF, 4, 0xfffffff0u },
	{ "xen descsz 2", NOTE_OFF + 20 + 4, 4, 2 },
	{ "pvh entry unloaded", NOTE_OFF + 20 + 16, 4, 0x7000000 },
};

static void patch(uint8_t *b, const struct elf_patch *p)
{
	switch (p->width) {
	case 1: b[p->off] = (uint8_t)p->val; break;
	case 2: put_le16(b + p->off, (uint16_t)p->val); break;
	case 4: put_le32(b + p->off, (uint32_t)p->val); break;
	default: put_le64(b + p->off, p->val); break;
	}
}

static void test_elf_malformed(void **state)
{
	uint8_t b[ELF_LEN];

	for (size_t i = 0; i < sizeof(bad_elves) / sizeof(bad_elves[0]); i++) {
		make_elf(b, 4);
		/* "no PT_LOAD" turns both loads into PT_NULL. */
		if (bad_elves[i].off == PHDR(0) && bad_elves[i].width == 4)
			put_le32(b + PHDR(1), 0);
		patch(b, &bad_elves[i]);
		if (parse_copy(b, sizeof(b), 0) != -EINVAL)
			fail_msg("variant '%s' was accepted", bad_elves[i].what);
	}
}

/* 16 loads fit in struct kernel_image; the 17th is refused. */
static void test_elf_segment_limit(void **state)
{
	uint8_t b[64 + 56 * (BOOT_MAX_SEGMENTS + 1)];
	struct kernel_image img;

	memset(b, 0, sizeof(b));
	for (int n = BOOT_MAX_SEGMENTS; n <= BOOT_MAX_SEGMENTS + 1; n++) {
		put_ehdr(b, SEG0_GPA, (uint16_t)n);
		for (int i = 0; i < n; i++)
			put_phdr(b + PHDR(i), PT_LOAD, 0, 0,
				 SEG0_GPA + 0x1000ull * (uint64_t)i, 0, 0x1000);
		int ret = boot_parse_kernel(b, (size_t)PHDR(n), NULL, &img);
		assert_int_equal(ret, n == BOOT_MAX_SEGMENTS ? 0 : -EINVAL);
		if (ret == 0)
			assert_int_equal(img.nr_segments, BOOT_MAX_SEGMENTS);
		kernel_image_free(&img);
	}
}

/* ---- compressors, each followed by Linux's le32 size word ---- */

typedef size_t (*compress_fn)(const uint8_t *in, size_t n, uint8_t *out,
			      size_t cap);

static size_t gzip_compress(const uint8_t *in, size_t n, uint8_t *out,
			    size_t cap)
{
	z_stream zs;

	memset(&zs, 0, sizeof(zs));
	assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8,
				      Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)n;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	deflateEnd(&zs);
	return zs.total_out;
}

static size_t xz_compress(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	size_t pos = 0;

	/* Linux uses --check=crc32. */
	assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in,
						 n, out, &pos, cap), LZMA_OK);
	return pos;
}

static size_t zstd_compress(const uint8_t *in, size_t n, uint8_t *out,
			    size_t cap)
{
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t r;

	assert_non_null(cctx);
	/* The checksum lets the corruption test expect a failure. */
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	r = ZSTD_compress2(cctx, out, cap, in, n);
	ZSTD_freeCCtx(cctx);
	assert_false(ZSTD_isError(r));
	return r;
}

/* LZ4 legacy frame: magic, then [le32 size][block] per 8 MiB of input. */
static size_t lz4_compress(const uint8_t *in, size_t n, uint8_t *out,
			   size_t cap)
{
	const size_t chunk = 8u << 20;
	size_t pos = 4;

	put_le32(out, 0x184c2102);
	for (size_t done = 0; done < n; done += chunk) {
		size_t len = n - done < chunk ? n - done : chunk;
		int c = LZ4_compress_default((const char *)in + done,
					     (char *)out + pos + 4, (int)len,
					     (int)(cap - pos - 4));

		assert_true(c > 0);
		put_le32(out + pos, (uint32_t)c);
		pos += 4 + (size_t)c;
	}
	return pos;
}

struct codec {
	const char *name;
	compress_fn compress;
	size_t corrupt_at; /* a byte whose change the format must notice */
};

static const struct codec codecs[] = {
	{ "gzip", gzip_compress, 20 },
	{ "xz", xz_compress, 40 },
	{ "zstd", zstd_compress, 20 },
	/* LZ4 legacy has no checksum: break the first chunk's size instead. */
	{ "lz4", lz4_compress, 7 },
};

/* Compressed payload + size word in a malloc'd buffer. */
static uint8_t *compress_payload(const struct codec *c, const uint8_t *in,
				 size_t n, size_t *out_len)
{
	size_t cap = 2 * n + 65536;
	uint8_t *out = malloc(cap);
	size_t len;

	assert_non_null(out);
	len = c->compress(in, n, out, cap - 4);
	put_le32(out + len, (uint32_t)n);
	*out_len = len + 4;
	return out;
}

/* ---- synthetic bzImage ---- */

#define BZ_SETUP_SECTS 4
#define BZ_SETUP_SIZE ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_PAYLOAD_OFF 0x300 /* stands in for the decompressor's code */
#define BZ_INIT_SIZE 0x800000
#define BZ_PREF 0x1000000

/* A protocol 2.15 bzImage whose payload is `payload` (copied). */
static uint8_t *make_bzimage(const uint8_t *payload, size_t plen,
			     size_t *out_len)
{
	size_t len = BZ_SETUP_SIZE + BZ_PAYLOAD_OFF + plen;
	uint8_t *b = calloc(1, len);

	assert_non_null(b);
	b[0x1f1] = BZ_SETUP_SECTS;
	put_le16(b + 0x1fe, 0xaa55);
	b[0x200] = 0xeb; /* jmp over the header, which ends at 0x26c */
	b[0x201] = 0x6a;
	memcpy(b + 0x202, "HdrS", 4);
	put_le16(b + 0x206, 0x020f);
	b[0x211] = 1; /* LOADED_HIGH */
	put_le32(b + 0x214, 0x100000);
	put_le32(b + 0x22c, 0x7fffffff);
	put_le32(b + 0x230, 0x200000);
	b[0x234] = 1; /* relocatable */
	put_le16(b + 0x236, 0x3); /* XLF_KERNEL_64 | above 4G */
	put_le32(b + 0x238, 2047);
	put_le32(b + 0x248, BZ_PAYLOAD_OFF);
	put_le32(b + 0x24c, (uint32_t)plen);
	put_le64(b + 0x258, BZ_PREF);
	put_le32(b + 0x260, BZ_INIT_SIZE);
	memset(b + BZ_SETUP_SIZE, 0x90, BZ_PAYLOAD_OFF);
	memcpy(b + BZ_SETUP_SIZE + BZ_PAYLOAD_OFF, payload, plen);
	*out_len = len;
	return b;
}

/* bzImage around the test ELF compressed with `c`. */
static uint8_t *make_bz_elf(const struct codec *c, uint8_t *elf,
			    size_t *out_len)
{
	size_t plen;
	uint8_t *payload, *bz;

	make_elf(elf, 4);
	payload = compress_payload(c, elf, ELF_LEN, &plen);
	bz = make_bzimage(payload, plen, out_len);
	free(payload);
	return bz;
}

static void check_bz_header(const struct kernel_image *img, const uint8_t *bz)
{
	assert_int_equal(img->format, KERNEL_FORMAT_BZIMAGE);
	assert_ptr_equal(img->setup_header, bz + 0x1f1);
	assert_int_equal(img->setup_header_len, 0x26c - 0x1f1);
	assert_int_equal(img->boot_protocol, 0x020f);
	assert_int_equal(img->initrd_addr_max, 0x7fffffff);
	assert_int_equal(img->cmdline_size, 2047);
}

static void test_bz_decompress(void **state)
{
	const struct codec *c = *state;
	uint8_t elf[ELF_LEN];
	struct kernel_image img;
	size_t len;
	uint8_t *bz = make_bz_elf(c, elf, &len);

	assert_int_equal(boot_detect_format(bz, len), KERNEL_FORMAT_BZIMAGE);
	assert_int_equal(boot_parse_kernel(bz, len, NULL, &img), 0);
	check_bz_header(&img, bz);
	assert_int_equal(img.decompressed, 1);
	assert_non_null(img.owned);
	assert_int_equal(img.entry, SEG0_GPA);
	assert_int_equal(img.pvh_entry, PVH_ENTRY);
	check_elf_segments(&img, elf);
	kernel_image_free(&img);
	assert_null(img.owned);
	free(bz);
}

/* Cut the stream short (payload_length) or break one byte: -EINVAL. */
static void test_bz_corrupt(void **state)
{
	const struct codec *c = *state;
	uint8_t elf[ELF_LEN];
	size_t len, plen;
	uint8_t *bz = make_bz_elf(c, elf, &len);
	uint8_t *payload = bz + BZ_SETUP_SIZE + BZ_PAYLOAD_OFF;

	plen = len - BZ_SETUP_SIZE - BZ_PAYLOAD_OFF;
	put_le32(bz + 0x24c, (uint32_t)(plen / 2));
	assert_int_equal(parse_copy(bz, len, 0), -EINVAL);
	put_le32(bz + 0x24c, (uint32_t)plen);
	payload[c->corrupt_at] ^= 0x55;
	assert_int_equal(parse_copy(bz, len, 0), -EINVAL);
	free(bz);
}

/* Every prefix of a bzImage fails cleanly in both modes. */
static void test_bz_truncated(void **state)
{
	uint8_t elf[ELF_LEN];
	size_t len;
	uint8_t *bz = make_bz_elf(&codecs[0], elf, &len);

	for (size_t n = 0; n < len; n++) {
		assert_true(parse_copy(bz, n, 0) < 0);
		/* As-is needs only the setup sectors plus the 64-bit entry. */
		assert_int_equal(parse_copy(bz, n, 1) < 0,
				 n <= BZ_SETUP_SIZE + 0x200);
	}
	free(bz);
}

/* LZ4 over 8 MiB: several chunks, and a repeated magic between frames. */
static void test_bz_lz4_multichunk(void **state)
{
	const size_t big = (9u << 20) + 4096;
	size_t elf_len = SEG0_OFF + big, plen, len;
	uint8_t *elf = calloc(1, elf_len), *payload, *bz;
	struct kernel_image img;

	assert_non_null(elf);
	put_ehdr(elf, SEG0_GPA, 1);
	put_phdr(elf + PHDR(0), PT_LOAD, SEG0_OFF, SEG0_VADDR, SEG0_GPA, big,
		 big);
	for (size_t i = 0; i < big; i++)
		elf[SEG0_OFF + i] = (uint8_t)(i % 251);
	payload = compress_payload(&codecs[3], elf, elf_len, &plen);
	/* Splice in a second legacy magic after the first chunk. */
	size_t first = 8 + get_le32(payload + 4);
	payload = realloc(payload, plen + 4);
	assert_non_null(payload);
	memmove(payload + first + 4, payload + first, plen - first);
	put_le32(payload + first, 0x184c2102);
	bz = make_bzimage(payload, plen + 4, &len);
	assert_int_equal(boot_parse_kernel(bz, len, NULL, &img), 0);
	assert_int_equal(img.nr_segments, 1);
	assert_int_equal(img.segments[0].file_size, big);
	assert_memory_equal(img.segments[0].data, elf + SEG0_OFF, big);
	kernel_image_free(&img);
	free(bz);
	free(payload);
	free(elf);
}

/* Recognised but unsupported compressions, and unknown ones: -ENOTSUP. */
static void test_bz_unsupported(void **state)
{
	static const uint8_t payloads[][12] = {
		{ 'B', 'Z', 'h', '9', '1', 'A', 'Y', '&', 'S', 'Y' }, /* bzip2 */
		{ 0x5d, 0x00, 0x00, 0x80, 0x00, 0xff, 0xff, 0xff },  /* lzma */
		{ 0x89, 'L', 'Z', 'O', 0x00, 0x0d, 0x0a, 0x1a },     /* lzop */
		{ 0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7 },        /* lz4 frame */
		{ 'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd' },
	};

	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		size_t len;
		uint8_t *bz = make_bzimage(payloads[i], sizeof(payloads[i]), &len);

		assert_int_equal(parse_copy(bz, len, 0), -ENOTSUP);
		/* As-is mode never looks at the payload. */
		assert_int_equal(parse_copy(bz, len, 1), 0);
		free(bz);
	}
}

/* A payload that unpacks fine but is no ELF: -EINVAL, nothing leaked. */
static void test_bz_payload_not_elf(void **state)
{
	uint8_t junk[4096];
	size_t plen, len;
	uint8_t *payload, *bz;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 13);
	for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
		payload = compress_payload(&codecs[c], junk, sizeof(junk), &plen);
		bz = make_bzimage(payload, plen, &len);
		assert_int_equal(parse_copy(bz, len, 0), -EINVAL);
		free(bz);
		free(payload);
	}
}

/* The size word is only a hint: a wrong one must not matter. */
static void test_bz_wrong_size_hint(void **state)
{
	static const uint32_t hints[] = { 0, 1, 0xffffffffu };
	uint8_t elf[ELF_LEN];
	size_t len;

	for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
		uint8_t *bz = make_bz_elf(&codecs[c], elf, &len);

		for (size_t h = 0; h < sizeof(hints) / sizeof(hints[0]); h++) {
			put_le32(bz + len - 4, hints[h]);
			assert_int_equal(parse_copy(bz, len, 0), 0);
		}
		free(bz);
	}
}

static void test_bz_header_checks(void **state)
{
	uint8_t elf[ELF_LEN];
	size_t len;
	uint8_t *bz = make_bz_elf(&codecs[0], elf, &len);

	put_le16(bz + 0x206, 0x020b); /* 2.11: no xloadflags */
	assert_int_equal(parse_copy(bz, len, 0), -ENOTSUP);
	assert_int_equal(parse_copy(bz, len, 1), -ENOTSUP);
	put_le16(bz + 0x206, 0x020f);
	put_le16(bz + 0x236, 0x2); /* 32-bit only kernel */
	assert_int_equal(parse_copy(bz, len, 0), -ENOTSUP);
	put_le16(bz + 0x236, 0x3);
	bz[0x1f1] = 200; /* setup sectors beyond the file */
	assert_int_equal(parse_copy(bz, len, 0), -EINVAL);
	assert_int_equal(parse_copy(bz, len, 1), -EINVAL);
	bz[0x1f1] = BZ_SETUP_SECTS;
	put_le32(bz + 0x248, 0xfffffff0u); /* payload beyond the file */
	assert_int_equal(parse_copy(bz, len, 0), -EINVAL);
	put_le32(bz + 0x248, BZ_PAYLOAD_OFF);
	put_le32(bz + 0x24c, 0);
	assert_int_equal(parse_copy(bz, len, 0), -EINVAL);
	put_le32(bz + 0x24c, 0xffffffffu);
	assert_int_equal(parse_copy(bz, len, 0), -EINVAL);
	memcpy(bz + 0x202, "HdrX", 4);
	assert_int_equal(parse_copy(bz, len, 0), -EINVAL);
	free(bz);
}

/* setup_sects 0 means 4; the header length follows the jump, clamped. */
static void test_bz_setup_sects_and_header_len(void **state)
{
	static const struct { uint8_t jump; size_t len; } cases[] = {
		{ 0x6a, 0x26c - 0x1f1 }, { 0x00, 0x268 - 0x1f1 },
		{ 0x70, 0x272 - 0x1f1 }, { 0xff, 0x290 - 0x1f1 },
	};
	uint8_t elf[ELF_LEN];
	struct kernel_image img;
	size_t len;
	uint8_t *bz = make_bz_elf(&codecs[0], elf, &len);

	bz[0x1f1] = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bz[0x201] = cases[i].jump;
		assert_int_equal(boot_parse_kernel(bz, len, NULL, &img), 0);
		assert_int_equal(img.setup_header_len, cases[i].len);
		kernel_image_free(&img);
	}
	free(bz);
}

static void test_bz_as_is(void **state)
{
	static const struct { uint64_t pref; uint32_t code32, init; uint64_t gpa; } cases[] = {
		{ BZ_PREF, 0x100000, BZ_INIT_SIZE, BZ_PREF },
		{ 0, 0x100000, BZ_INIT_SIZE, 0x100000 },
		{ 0, 0x200000, 0, 0x200000 },
		{ 0x1000, 0, BZ_INIT_SIZE, 0x100000 },       /* pref too low */
		{ 0x100000000ull, 0x100000, 0, 0x100000 },  /* pref above 4G */
	};
	struct boot_options opts = { .bzimage_as_is = 1 };
	uint8_t elf[ELF_LEN];
	struct kernel_image img;
	size_t len;
	uint8_t *bz = make_bz_elf(&codecs[0], elf, &len);
	uint64_t pm_size = len - BZ_SETUP_SIZE;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		put_le64(bz + 0x258, cases[i].pref);
		put_le32(bz + 0x214, cases[i].code32);
		put_le32(bz + 0x260, cases[i].init);
		assert_int_equal(boot_parse_kernel(bz, len, &opts, &img), 0);
		check_bz_header(&img, bz);
		assert_int_equal(img.decompressed, 0);
		assert_null(img.owned);
		assert_int_equal(img.nr_segments, 1);
		assert_ptr_equal(img.segments[0].data, bz + BZ_SETUP_SIZE);
		assert_int_equal(img.segments[0].file_size, pm_size);
		assert_int_equal(img.segments[0].mem_size,
				 cases[i].init ? cases[i].init : pm_size);
		assert_int_equal(img.segments[0].gpa, cases[i].gpa);
		assert_int_equal(img.entry, cases[i].gpa + 0x200);
		kernel_image_free(&img);
	}
	free(bz);
}

/* ---- detection, names, arguments ---- */

static void test_detect_format(void **state)
{
	uint8_t b[0x300];

	memset(b, 0, sizeof(b));
	assert_int_equal(boot_detect_format(b, sizeof(b)), KERNEL_FORMAT_UNKNOWN);
	assert_int_equal(boot_detect_format(NULL, 0), KERNEL_FORMAT_UNKNOWN);
	memcpy(b, "\177ELF", 4);
	assert_int_equal(boot_detect_format(b, 4), KERNEL_FORMAT_ELF);
	assert_int_equal(boot_detect_format(b, 3), KERNEL_FORMAT_UNKNOWN);
	memset(b, 0, 4);
	memcpy(b + 0x202, "HdrS", 4);
	assert_int_equal(boot_detect_format(b, 0x206), KERNEL_FORMAT_BZIMAGE);
	assert_int_equal(boot_detect_format(b, 0x205), KERNEL_FORMAT_UNKNOWN);
	memset(b + 0x202, 0, 4);
	memcpy(b + 0x38, "ARM\x64", 4);
	assert_int_equal(boot_detect_format(b, 0x40), KERNEL_FORMAT_ARM64_IMAGE);
	assert_int_equal(boot_detect_format(b, 0x3f), KERNEL_FORMAT_UNKNOWN);
	/* The parser's cases are in test_arm64_image.c. */
	assert_int_equal(parse_copy(b, 0x3f, 0), -EINVAL);
	memset(b + 0x38, 0, 4);
	assert_int_equal(parse_copy(b, sizeof(b), 0), -EINVAL);
}

static void test_format_names(void **state)
{
	assert_string_equal(boot_format_name(KERNEL_FORMAT_BZIMAGE), "bzImage");
	assert_string_equal(boot_format_name(KERNEL_FORMAT_ELF), "ELF");
	assert_string_equal(boot_format_name(KERNEL_FORMAT_ELF_PVH), "ELF (PVH)");
	assert_string_equal(boot_format_name(KERNEL_FORMAT_RAW), "raw");
	assert_string_equal(boot_format_name(KERNEL_FORMAT_ARM64_IMAGE),
			    "arm64 Image");
	assert_string_equal(boot_format_name(KERNEL_FORMAT_UNKNOWN), "unknown");
	assert_string_equal(boot_format_name((enum kernel_format)99), "unknown");
}

static void test_null_arguments(void **state)
{
	struct kernel_image img;
	uint8_t b[ELF_LEN];

	make_elf(b, 0);
	assert_int_equal(boot_parse_kernel(NULL, 10, NULL, &img), -EINVAL);
	assert_int_equal(boot_parse_kernel(b, sizeof(b), NULL, NULL), -EINVAL);
	kernel_image_free(NULL);
	kernel_image_free(&img);
}

/* ---- a real Debian kernel, when one is around ---- */

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

/* A stock x86_64 kernel unpacks to a vmlinux linked at 16 MiB. */
static void check_real_kernel(const char *path, const uint8_t *buf, size_t len)
{
	struct boot_options as_is = { .bzimage_as_is = 1 };
	struct kernel_image img;

	assert_int_equal(boot_parse_kernel(buf, len, NULL, &img), 0);
	print_message("%s: %s, protocol %#x, entry %#llx, pvh %#llx, "
		      "%d segments\n", path, boot_format_name(img.format),
		      img.boot_protocol, (unsigned long long)img.entry,
		      (unsigned long long)img.pvh_entry, img.nr_segments);
	assert_int_equal(img.format, KERNEL_FORMAT_BZIMAGE);
	assert_int_equal(img.decompressed, 1);
	assert_true(img.nr_segments >= 2);
	assert_true(img.entry >= 0x1000000 && img.entry < 0x2000000);
	kernel_image_free(&img);
	assert_int_equal(boot_parse_kernel(buf, len, &as_is, &img), 0);
	assert_int_equal(img.nr_segments, 1);
	assert_int_equal(img.entry, img.segments[0].gpa + 0x200);
	kernel_image_free(&img);
}

/* Check every kernel matching `pattern`; returns how many were checked. */
static int check_real_kernels(const char *pattern)
{
	size_t len = 0;
	int checked = 0;
	glob_t g;

	memset(&g, 0, sizeof(g));
	/* On failure nothing is listed; globfree is safe either way. */
	if (glob(pattern, 0, NULL, &g) != 0)
		g.gl_pathc = 0;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		uint8_t *buf = slurp(g.gl_pathv[i], &len);

		if (!buf)
			continue; /* e.g. /boot/vmlinuz-* readable by root only */
		if (boot_detect_format(buf, len) == KERNEL_FORMAT_ARM64_IMAGE) {
			/* kernels/arm64/: test_arm64_image checks it. */
			free(buf);
			continue;
		}
		check_real_kernel(g.gl_pathv[i], buf, len);
		free(buf);
		checked++;
	}
	globfree(&g);
	return checked;
}

static void test_real_kernels(void **state)
{
	const char *cache = getenv("VIBEVMM_CACHE");
	const char *home = getenv("HOME");
	char pattern[4096];
	int checked;

	if (cache && *cache)
		snprintf(pattern, sizeof(pattern), "%s/kernels/*/vmlinuz", cache);
	else
		snprintf(pattern, sizeof(pattern),
			 "%s/.cache/vibevmm/kernels/*/vmlinuz", home ? home : "");
	checked = check_real_kernels(pattern);
	checked += check_real_kernels("/boot/vmlinuz-*");
	if (!checked) {
		print_message("no readable kernel in the cache or /boot\n");
		skip();
	}
}

static const int pvh4 = 4, pvh8 = 8;

#define CODEC_TESTS(i)                                                   \
	cmocka_unit_test_prestate(test_bz_decompress, (void *)&codecs[i]), \
	cmocka_unit_test_prestate(test_bz_corrupt, (void *)&codecs[i])

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_prestate(test_elf_pvh, (void *)&pvh4),
		cmocka_unit_test_prestate(test_elf_pvh, (void *)&pvh8),
		cmocka_unit_test(test_elf_plain),
		cmocka_unit_test(test_elf_virtual_entry),
		cmocka_unit_test(test_elf_bss_and_empty),
		cmocka_unit_test(test_elf_truncated),
		cmocka_unit_test(test_elf_malformed),
		cmocka_unit_test(test_elf_segment_limit),
		CODEC_TESTS(0),
		CODEC_TESTS(1),
		CODEC_TESTS(2),
		CODEC_TESTS(3),
		cmocka_unit_test(test_bz_truncated),
		cmocka_unit_test(test_bz_lz4_multichunk),
		cmocka_unit_test(test_bz_unsupported),
		cmocka_unit_test(test_bz_payload_not_elf),
		cmocka_unit_test(test_bz_wrong_size_hint),
		cmocka_unit_test(test_bz_header_checks),
		cmocka_unit_test(test_bz_setup_sects_and_header_len),
		cmocka_unit_test(test_bz_as_is),
		cmocka_unit_test(test_detect_format),
		cmocka_unit_test(test_format_names),
		cmocka_unit_test(test_null_arguments),
		cmocka_unit_test(test_real_kernels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

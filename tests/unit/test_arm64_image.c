/* SPDX-License-Identifier: MIT */
/*
 * The arm64 Image parser (boot/arm64_image.c) through the public
 * boot_detect_format/boot_parse_kernel: synthetic headers, valid and with
 * each field wrong, truncated, with an EFI stub's PE section table, as
 * Image.gz; and Debian's arm64 kernel when the cache has it
 * (kernels/arm64/vmlinuz, fetched by the arm64 fixtures).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "boot.h"

#define HDR 64
#define MiB (1ULL << 20)

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* A plain Image of `len` bytes: header, then a byte pattern. */
static uint8_t *make_image(size_t len, uint64_t text_offset, uint64_t image_size,
			   uint64_t flags)
{
	uint8_t *b = malloc(len);

	assert_non_null(b);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(i * 13 + 7);
	memset(b, 0, HDR);
	put_le32(b, 0x14000010); /* b +0x40, as a kernel's code0 */
	put_le64(b + 8, text_offset);
	put_le64(b + 16, image_size);
	put_le64(b + 24, flags);
	memcpy(b + 56, "ARM\x64", 4);
	return b;
}

/*
 * An EFI-stub Image: "MZ", the PE header at 0x40, two sections whose raw
 * data ends at PE_FILE_END, then a 0x100-byte signature like Debian's.
 */
#define PE_OFF 0x40
#define PE_FILE_END 0x800
#define PE_LEN (PE_FILE_END + 0x100)
#define PE_OPT_SIZE 16
static uint8_t *make_pe_image(uint64_t image_size)
{
	uint8_t *b = make_image(PE_LEN, 0, image_size, 0xa);
	uint8_t *sec = b + PE_OFF + 24 + PE_OPT_SIZE;

	memcpy(b, "MZ", 2);
	put_le32(b + 60, PE_OFF);
	memset(b + PE_OFF, 0, 24 + PE_OPT_SIZE + 2 * 40);
	memcpy(b + PE_OFF, "PE\0\0", 4);
	put_le16(b + PE_OFF + 4, 0xaa64);
	put_le16(b + PE_OFF + 6, 2);
	put_le16(b + PE_OFF + 20, PE_OPT_SIZE);
	memcpy(sec, ".text", 5);
	put_le32(sec + 16, 0x200); /* SizeOfRawData */
	put_le32(sec + 20, 0x200); /* PointerToRawData */
	memcpy(sec + 40, ".data", 5);
	put_le32(sec + 56, 0x400);
	put_le32(sec + 60, PE_FILE_END - 0x400);
	return b;
}

static uint8_t *gzip_of(const uint8_t *in, size_t len, int level, size_t *out_len)
{
	z_stream zs;
	size_t cap = len + len / 100 + 1024;
	uint8_t *out = malloc(cap);

	assert_non_null(out);
	memset(&zs, 0, sizeof(zs));
	assert_int_equal(deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8,
				      Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return out;
}

/* Parse a private copy of `len` bytes, so ASan sees any read past it. */
static int parse(const uint8_t *b, size_t len, struct kernel_image *img)
{
	uint8_t *copy = malloc(len ? len : 1);
	int ret;

	assert_non_null(copy);
	memcpy(copy, b, len);
	ret = boot_parse_kernel(copy, len, NULL, img);
	if (ret == 0 && !img->owned) {
		/* Segment data points into the input: keep the copy with it. */
		img->owned = copy;
		return 0;
	}
	free(copy);
	return ret;
}

static int parse_status(const uint8_t *b, size_t len)
{
	struct kernel_image img;
	int ret = parse(b, len, &img);

	kernel_image_free(&img);
	return ret;
}

static void assert_segment(const struct kernel_image *img, uint64_t gpa,
			   const uint8_t *data, uint64_t file_size, uint64_t mem_size)
{
	assert_int_equal(img->format, KERNEL_FORMAT_ARM64_IMAGE);
	assert_int_equal(img->nr_segments, 1);
	assert_int_equal(img->segments[0].gpa, gpa);
	assert_int_equal(img->entry, gpa);
	assert_int_equal(img->segments[0].file_size, file_size);
	assert_int_equal(img->segments[0].mem_size, mem_size);
	assert_memory_equal(img->segments[0].data, data, file_size);
}

/* ---- tests ---- */

static void test_plain(void **state)
{
	static const uint64_t offsets[] = { 0, 0x80000, 0x1ff000 };
	struct kernel_image img;

	for (size_t i = 0; i < 3; i++) {
		uint8_t *b = make_image(4096, offsets[i], 0x10000, 0xa);

		assert_int_equal(boot_detect_format(b, 4096), KERNEL_FORMAT_ARM64_IMAGE);
		assert_int_equal(parse(b, 4096, &img), 0);
		assert_segment(&img, offsets[i], b, 4096, 0x10000);
		assert_int_equal(img.decompressed, 0);
		assert_string_equal(boot_format_name(img.format), "arm64 Image");
		kernel_image_free(&img);
		free(b);
	}
}

/* image_size below the file size: only image_size bytes are the image. */
static void test_file_longer_than_image(void **state)
{
	uint8_t *b = make_image(4096, 0, 0x800, 0xa);
	struct kernel_image img;

	assert_int_equal(parse(b, 4096, &img), 0);
	assert_segment(&img, 0, b, 0x800, 0x800);
	kernel_image_free(&img);
	free(b);
}

/* Before 3.17: image_size 0, text_offset of unknown endianness. */
static void test_legacy(void **state)
{
	uint8_t *b = make_image(3000, 0x0000080000000000ULL, 0, 1 /* meaningless */);
	struct kernel_image img;

	assert_int_equal(parse(b, 3000, &img), 0);
	assert_segment(&img, 0x80000, b, 3000, 3000);
	kernel_image_free(&img);
	free(b);
}

/* Any page size; reserved flag bits are ignored; big-endian is refused. */
static void test_flags(void **state)
{
	static const uint64_t ok[] = { 0, 2, 4, 6, 8, 0xe, 1ULL << 4, 1ULL << 63 };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint8_t *b = make_image(256, 0, 0x1000, ok[i]);

		assert_int_equal(parse_status(b, 256), 0);
		free(b);
	}
	for (uint64_t be = 1; be < 16; be += 2) {
		uint8_t *b = make_image(256, 0, 0x1000, be);

		assert_int_equal(boot_detect_format(b, 256), KERNEL_FORMAT_ARM64_IMAGE);
		assert_int_equal(parse_status(b, 256), -ENOTSUP);
		free(b);
	}
}

static void test_bad_fields(void **state)
{
	static const struct {
		uint64_t text_offset, image_size;
	} bad[] = {
		{ 0x200000, 0x10000 },     /* beyond the 2 MiB region */
		{ 0x80001, 0x10000 },      /* not page-aligned */
		{ 0x800, 0x10000 },
		{ 0, 32 },                 /* smaller than its own header */
		{ 0, (1ULL << 30) + 1 },   /* no kernel is that big */
		{ 0, ~0ULL },              /* would overflow */
	};
	uint8_t *b;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = make_image(512, bad[i].text_offset, bad[i].image_size, 0xa);
		if (parse_status(b, 512) != -EINVAL)
			fail_msg("case %zu accepted", i);
		free(b);
	}
	b = make_image(512, 0, 0x1000, 0xa);
	b[59] = 0x65; /* magic "ARMe" */
	assert_int_equal(boot_detect_format(b, 512), KERNEL_FORMAT_UNKNOWN);
	assert_int_equal(parse_status(b, 512), -EINVAL);
	free(b);
}

static void test_truncated_header(void **state)
{
	uint8_t *b = make_image(HDR, 0, 0x1000, 0xa);

	for (size_t len = 0; len < HDR; len++) {
		assert_int_equal(boot_detect_format(b, len), KERNEL_FORMAT_UNKNOWN);
		assert_int_equal(parse_status(b, len), -EINVAL);
	}
	assert_int_equal(parse_status(b, HDR), 0); /* a header alone is an image */
	free(b);
}

/* The EFI stub's sections say how long the file is: shorter is truncated. */
static void test_pe_truncated(void **state)
{
	uint8_t *b = make_pe_image(0x1000);
	struct kernel_image img;

	assert_int_equal(parse(b, PE_LEN, &img), 0);
	assert_segment(&img, 0, b, PE_LEN, 0x1000); /* the signature comes along */
	kernel_image_free(&img);
	assert_int_equal(parse_status(b, PE_FILE_END), 0);
	for (size_t len = HDR; len < PE_FILE_END; len++) {
		assert_int_equal(boot_detect_format(b, len), KERNEL_FORMAT_ARM64_IMAGE);
		if (parse_status(b, len) != -EINVAL)
			fail_msg("a %zu-byte prefix was accepted", len);
	}
	free(b);
}

static void test_pe_malformed(void **state)
{
	uint8_t *b = make_pe_image(0x1000);

	memcpy(b + PE_OFF, "PX", 2);
	assert_int_equal(parse_status(b, PE_LEN), -EINVAL);
	memcpy(b + PE_OFF, "PE", 2);
	put_le32(b + 60, PE_LEN - 8); /* header past the end */
	assert_int_equal(parse_status(b, PE_LEN), -EINVAL);
	put_le32(b + 60, PE_OFF);
	put_le16(b + PE_OFF + 6, 0xffff); /* section table past the end */
	assert_int_equal(parse_status(b, PE_LEN), -EINVAL);
	put_le16(b + PE_OFF + 6, 2);
	put_le32(b + PE_OFF + 24 + PE_OPT_SIZE + 56, 0xffffffff); /* raw size */
	assert_int_equal(parse_status(b, PE_LEN), -EINVAL);
	/* No "MZ": res5 is just a reserved field, and the PE is not read. */
	memcpy(b, "\x10\x00", 2);
	assert_int_equal(parse_status(b, PE_LEN), 0);
	free(b);
}

static void test_gzip(void **state)
{
	uint8_t *b = make_image(8192, 0x80000, 0x20000, 0xa), *gz;
	struct kernel_image img;
	size_t gz_len;

	gz = gzip_of(b, 8192, 9, &gz_len);
	assert_int_equal(boot_detect_format(gz, gz_len), KERNEL_FORMAT_ARM64_IMAGE);
	assert_int_equal(parse(gz, gz_len, &img), 0);
	assert_segment(&img, 0x80000, b, 8192, 0x20000);
	assert_int_equal(img.decompressed, 1);
	assert_non_null(img.owned);
	kernel_image_free(&img);
	/* Every cut of the stream fails, whether or not the header survives. */
	for (size_t len = 0; len < gz_len; len++)
		if (parse_status(gz, len) != -EINVAL)
			fail_msg("a %zu-byte cut of %zu was accepted", len, gz_len);
	free(gz);
	/* Big-endian inside: refused like the plain one. */
	put_le64(b + 24, 0xb);
	gz = gzip_of(b, 8192, 9, &gz_len);
	assert_int_equal(parse_status(gz, gz_len), -ENOTSUP);
	free(gz);
	free(b);
}

/* gzip of something that is not an Image, or of an Image.gz again. */
static void test_gzip_not_image(void **state)
{
	uint8_t *b = make_image(4096, 0, 0x10000, 0xa), *gz, *gz2;
	size_t gz_len, gz2_len;

	memset(b + 56, 0, 4);
	gz = gzip_of(b, 4096, 6, &gz_len);
	assert_int_equal(boot_detect_format(gz, gz_len), KERNEL_FORMAT_UNKNOWN);
	assert_int_equal(parse_status(gz, gz_len), -EINVAL);
	free(gz);
	memcpy(b + 56, "ARM\x64", 4);
	gz = gzip_of(b, 4096, 6, &gz_len);
	gz2 = gzip_of(gz, gz_len, 6, &gz2_len);
	assert_int_equal(boot_detect_format(gz2, gz2_len), KERNEL_FORMAT_UNKNOWN);
	assert_int_equal(parse_status(gz2, gz2_len), -EINVAL);
	/* A short gzip (under a header's worth of output) is no Image. */
	free(gz);
	gz = gzip_of(b, 40, 6, &gz_len);
	assert_int_equal(boot_detect_format(gz, gz_len), KERNEL_FORMAT_UNKNOWN);
	free(gz);
	free(gz2);
	free(b);
}

/* ---- Debian's arm64 kernel, when the cache has it ---- */

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
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

static void check_real_image(const uint8_t *buf, size_t len)
{
	uint64_t image_size = get_le64(buf + 16);
	struct kernel_image img;
	size_t gz_len;
	uint8_t *gz;

	assert_int_equal(boot_detect_format(buf, len), KERNEL_FORMAT_ARM64_IMAGE);
	assert_int_equal(boot_parse_kernel(buf, len, NULL, &img), 0);
	print_message("arm64 Image: %zu bytes, text_offset %#llx, image_size %#llx\n",
		      len, (unsigned long long)img.segments[0].gpa,
		      (unsigned long long)img.segments[0].mem_size);
	assert_true(img.segments[0].gpa < 2 * MiB && img.segments[0].gpa % 4096 == 0);
	assert_int_equal(img.segments[0].mem_size, image_size);
	assert_true(img.segments[0].file_size <= img.segments[0].mem_size);
	assert_ptr_equal(img.segments[0].data, buf);
	kernel_image_free(&img);
	/* Debian's has an EFI stub: a cut file is caught. */
	if (memcmp(buf, "MZ", 2) == 0)
		assert_int_equal(boot_parse_kernel(buf, len / 2, NULL, &img), -EINVAL);
	/* The same kernel as Image.gz unpacks to the same bytes. */
	gz = gzip_of(buf, len, 1, &gz_len);
	assert_int_equal(boot_detect_format(gz, gz_len), KERNEL_FORMAT_ARM64_IMAGE);
	assert_int_equal(boot_parse_kernel(gz, gz_len, NULL, &img), 0);
	assert_int_equal(img.decompressed, 1);
	assert_int_equal(img.segments[0].mem_size, image_size);
	assert_int_equal(img.segments[0].file_size, len < image_size ? len : image_size);
	assert_memory_equal(img.segments[0].data, buf, img.segments[0].file_size);
	kernel_image_free(&img);
	free(gz);
}

static void test_real_kernel(void **state)
{
	const char *cache = getenv("VIBEVMM_CACHE");
	const char *home = getenv("HOME");
	char path[4096];
	uint8_t *buf;
	size_t len = 0;

	if (cache && *cache)
		snprintf(path, sizeof(path), "%s/kernels/arm64/vmlinuz", cache);
	else
		snprintf(path, sizeof(path), "%s/.cache/vibevmm/kernels/arm64/vmlinuz",
			 home ? home : "");
	buf = slurp(path, &len);
	if (!buf) {
		print_message("no %s: skipped\n", path);
		skip();
	}
	check_real_image(buf, len);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_file_longer_than_image),
		cmocka_unit_test(test_legacy),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_truncated_header),
		cmocka_unit_test(test_pe_truncated),
		cmocka_unit_test(test_pe_malformed),
		cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_gzip_not_image),
		cmocka_unit_test(test_real_kernel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the kernel-image parsers (ELF, bzImage, arm64 Image
 * and Image.gz): every input goes through boot_parse_kernel() in both
 * bzImage modes. Each accepted segment is read
 * end to end so ASan flags any descriptor that points outside its buffer.
 *
 * FUZZ_SRCS: boot/format.c boot/elf.c boot/bzimage.c boot/decompress.c boot/arm64_image.c boot/kcache.c boot/sha256.c
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -Iinclude -I. \
 *     tests/fuzz/fuzz_kernel.c boot/format.c boot/elf.c boot/bzimage.c \
 *     boot/decompress.c boot/arm64_image.c boot/kcache.c boot/sha256.c -lz -llzma -lzstd -llz4 \
 *     -lnettle
 *   ./a.out tests/fuzz/corpus/kernel
 *
 * FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION lowers the decompression cap
 * (boot/decompress.h) so bombs stay cheap; without it the 512 MiB cap still
 * keeps the fuzzer under libFuzzer's default 2 GB RSS limit.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touch the first and last byte of every placed range. */
static unsigned int touch_segments(const struct kernel_image *img)
{
	unsigned int sum = 0;

	for (int i = 0; i < img->nr_segments; i++) {
		const struct boot_segment *s = &img->segments[i];

		if (s->mem_size < s->file_size)
			abort();
		if (s->file_size)
			sum += s->data[0] + s->data[s->file_size - 1];
	}
	if (img->setup_header && img->setup_header_len)
		sum += img->setup_header[img->setup_header_len - 1];
	return sum;
}

static void parse_once(const uint8_t *data, size_t size, int as_is)
{
	struct boot_options opts = { .bzimage_as_is = as_is };
	struct kernel_image img;
	volatile unsigned int sink;

	if (boot_parse_kernel(data, size, &opts, &img) == 0) {
		if (img.nr_segments < 1 || img.nr_segments > BOOT_MAX_SEGMENTS)
			abort();
		sink = touch_segments(&img);
		(void)sink;
		(void)boot_format_name(img.format);
	}
	kernel_image_free(&img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)boot_detect_format(data, size);
	parse_once(data, size, 0);
	parse_once(data, size, 1);
	return 0;
}

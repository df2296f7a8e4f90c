/* SPDX-License-Identifier: MIT */
/*
 * arm64 Linux Image (Documentation/arch/arm64/booting.rst), plain or as
 * Image.gz. The 64-byte header:
 *
 *   0   code0, code1   branch to the kernel (or "MZ" + a branch: EFI stub)
 *   8   text_offset    le64: load offset from a 2 MiB-aligned base
 *   16  image_size     le64: bytes the image occupies, BSS included
 *   24  flags          le64: bit 0 big-endian, bits 1-2 page size,
 *                      bit 3 placement anywhere, bits 4-63 reserved
 *   32  res2-res4
 *   56  magic          "ARM\x64"
 *   60  res5           offset of the PE header (EFI stub), or 0
 *
 * Pure parsing: the result says where the image goes relative to the load
 * base; arch code picks the base (arch/arm64/layout.h). An Image.gz is
 * unpacked on the host, as booting.rst asks of the boot loader.
 */
#include <errno.h>
#include <string.h>

#include "boot/boot_internal.h"
#include "boot/decompress.h"

#define HDR_TEXT_OFFSET 8
#define HDR_IMAGE_SIZE 16
#define HDR_FLAGS 24
#define HDR_MAGIC 56
#define HDR_PE_OFFSET 60

#define FLAG_BE (1u << 0)

/* Before Linux 3.17 image_size is 0 and text_offset's endianness unknown:
 * booting.rst says to assume 0x80000 then. */
#define LEGACY_TEXT_OFFSET 0x80000u
/* text_offset is an offset into the 2 MiB-aligned region, page-aligned. */
#define KERNEL_ALIGN 0x200000u
#define MIN_PAGE 0x1000u
/* No kernel needs more; bigger values are corrupt, and would overflow. */
#define MAX_IMAGE_SIZE (1ull << 30)

/* PE/COFF, for the EFI stub's section table. */
#define PE_COFF_HDR 24        /* "PE\0\0" + the COFF file header */
#define PE_NSECTIONS 6        /* le16, from the signature */
#define PE_OPT_HDR_SIZE 20    /* le16, from the signature */
#define PE_SECTION_SIZE 40
#define PE_SEC_RAW_SIZE 16    /* le32 SizeOfRawData */
#define PE_SEC_RAW_PTR 20     /* le32 PointerToRawData */

int boot_is_arm64_image(const uint8_t *buf, size_t len)
{
	return len >= ARM64_IMAGE_HDR_SIZE && memcmp(buf + HDR_MAGIC, "ARM\x64", 4) == 0;
}

int boot_is_arm64_image_gz(const uint8_t *buf, size_t len)
{
	uint8_t head[ARM64_IMAGE_HDR_SIZE];

	return boot_gunzip_head(buf, len, head, sizeof(head)) == (int)sizeof(head) &&
	       boot_is_arm64_image(head, sizeof(head));
}

/*
 * An EFI-stub Image ("MZ" at 0) says in its PE section table how many file
 * bytes it has: a file cut shorter is truncated. Without the stub nothing
 * tells, and the whole file is taken as the image.
 */
static int check_pe_sections(const uint8_t *buf, size_t len)
{
	uint64_t pe = le32_at(buf + HDR_PE_OFFSET), table;
	unsigned int n;

	if (memcmp(buf, "MZ", 2) != 0 || pe == 0)
		return 0;
	if (!in_bounds(pe, PE_COFF_HDR, len) || memcmp(buf + pe, "PE\0\0", 4) != 0)
		return -EINVAL;
	n = le16_at(buf + pe + PE_NSECTIONS);
	table = pe + PE_COFF_HDR + le16_at(buf + pe + PE_OPT_HDR_SIZE);
	if (!in_bounds(table, (uint64_t)n * PE_SECTION_SIZE, len))
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++) {
		const uint8_t *s = buf + table + (uint64_t)i * PE_SECTION_SIZE;

		if (!in_bounds(le32_at(s + PE_SEC_RAW_PTR), le32_at(s + PE_SEC_RAW_SIZE), len))
			return -EINVAL;
	}
	return 0;
}

/*
 * The header's placement: text_offset and the bytes to reserve. Reserved
 * flag bits are ignored, as booting.rst's evolution expects (bit 3 was once
 * reserved, and loaders that ignored it still booted the kernels that set
 * it); a big-endian kernel cannot run in our little-endian set-up.
 */
static int read_header(const uint8_t *buf, size_t len, uint64_t *text_offset,
		       uint64_t *image_size)
{
	uint64_t flags = le64_at(buf + HDR_FLAGS);

	*text_offset = le64_at(buf + HDR_TEXT_OFFSET);
	*image_size = le64_at(buf + HDR_IMAGE_SIZE);
	if (*image_size == 0) {
		*text_offset = LEGACY_TEXT_OFFSET;
		*image_size = len;
		return len <= MAX_IMAGE_SIZE ? 0 : -EINVAL;
	}
	if (flags & FLAG_BE)
		return -ENOTSUP;
	if (*text_offset >= KERNEL_ALIGN || *text_offset % MIN_PAGE ||
	    *image_size < ARM64_IMAGE_HDR_SIZE || *image_size > MAX_IMAGE_SIZE)
		return -EINVAL;
	return 0;
}

static int parse_plain(const uint8_t *buf, size_t len, struct kernel_image *out)
{
	struct boot_segment *s = &out->segments[0];
	uint64_t text_offset, image_size;
	int ret;

	if (!boot_is_arm64_image(buf, len))
		return -EINVAL;
	ret = read_header(buf, len, &text_offset, &image_size);
	if (ret)
		return ret;
	ret = check_pe_sections(buf, len);
	if (ret)
		return ret;
	out->format = KERNEL_FORMAT_ARM64_IMAGE;
	s->gpa = text_offset;
	s->data = buf;
	/* A signed Image may carry its signature past image_size: not loaded. */
	s->file_size = len < image_size ? len : image_size;
	s->mem_size = image_size;
	out->nr_segments = 1;
	out->entry = text_offset;
	return 0;
}

static int parse_gzip(const uint8_t *buf, size_t len, struct kernel_image *out)
{
	uint8_t *image;
	size_t image_len;
	int ret;

	ret = boot_decompress(buf, len, &image, &image_len);
	if (ret)
		return ret;
	out->owned = image; /* the caller frees it on failure too */
	if (!boot_is_arm64_image(image, image_len))
		return -EINVAL; /* gzip of something else */
	ret = parse_plain(image, image_len, out);
	out->decompressed = 1;
	return ret;
}

int boot_parse_arm64_image(const uint8_t *buf, size_t len, struct kernel_image *out)
{
	if (boot_detect_compression(buf, len) == PAYLOAD_GZIP)
		return parse_gzip(buf, len, out);
	return parse_plain(buf, len, out);
}

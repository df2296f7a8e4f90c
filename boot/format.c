/* SPDX-License-Identifier: MIT */
/* Kernel format detection and the parser dispatch behind include/boot.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot_internal.h"
#include "boot/decompress.h"

#define BZ_MAGIC_OFF 0x202       /* "HdrS" in the setup header */

enum kernel_format boot_detect_format(const uint8_t *buf, size_t len)
{
	if (!buf)
		return KERNEL_FORMAT_UNKNOWN;
	if (len >= 4 && memcmp(buf, "\177ELF", 4) == 0)
		return KERNEL_FORMAT_ELF;
	if (len >= BZ_MAGIC_OFF + 4 &&
	    memcmp(buf + BZ_MAGIC_OFF, "HdrS", 4) == 0)
		return KERNEL_FORMAT_BZIMAGE;
	if (boot_is_arm64_image(buf, len))
		return KERNEL_FORMAT_ARM64_IMAGE;
	/* Image.gz: only the header is unpacked to tell. */
	if (boot_detect_compression(buf, len) == PAYLOAD_GZIP &&
	    boot_is_arm64_image_gz(buf, len))
		return KERNEL_FORMAT_ARM64_IMAGE;
	/* A raw binary has no signature: the caller must say so explicitly. */
	return KERNEL_FORMAT_UNKNOWN;
}

const char *boot_format_name(enum kernel_format f)
{
	switch (f) {
	case KERNEL_FORMAT_RAW: return "raw";
	case KERNEL_FORMAT_ELF: return "ELF";
	case KERNEL_FORMAT_ELF_PVH: return "ELF (PVH)";
	case KERNEL_FORMAT_BZIMAGE: return "bzImage";
	case KERNEL_FORMAT_ARM64_IMAGE: return "arm64 Image";
	case KERNEL_FORMAT_UNKNOWN: break;
	}
	return "unknown";
}

static int parse_by_format(const uint8_t *buf, size_t len,
			   const struct boot_options *opts,
			   struct kernel_image *out)
{
	switch (boot_detect_format(buf, len)) {
	case KERNEL_FORMAT_ELF:
		return boot_parse_elf(buf, len, out);
	case KERNEL_FORMAT_BZIMAGE:
		return boot_parse_bzimage(buf, len, opts, out);
	case KERNEL_FORMAT_ARM64_IMAGE:
		return boot_parse_arm64_image(buf, len, out);
	default:
		return -EINVAL;
	}
}

int boot_parse_kernel(const uint8_t *buf, size_t len,
		      const struct boot_options *opts, struct kernel_image *out)
{
	int ret;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!buf)
		return -EINVAL;
	ret = parse_by_format(buf, len, opts, out);
	/* On failure leave nothing behind for the caller to free. */
	if (ret)
		kernel_image_free(out);
	return ret;
}

void kernel_image_free(struct kernel_image *img)
{
	if (!img)
		return;
	free(img->owned);
	memset(img, 0, sizeof(*img));
}

/* SPDX-License-Identifier: MIT */
/*
 * Kernel loading. Parsing is pure (buffer in, description out) so it can be
 * fuzzed; placing the result into guest memory is arch code's job.
 */
#ifndef VIBEVMM_BOOT_H
#define VIBEVMM_BOOT_H

#include <stddef.h>
#include <stdint.h>

struct vm;

enum kernel_format {
	KERNEL_FORMAT_UNKNOWN = 0,
	KERNEL_FORMAT_RAW,        /* flat binary, loaded at a given address */
	KERNEL_FORMAT_ELF,        /* ELF64 (x86 vmlinux): 64-bit entry */
	KERNEL_FORMAT_ELF_PVH,    /* ELF with a Xen PVH entry note */
	KERNEL_FORMAT_BZIMAGE,    /* x86 bzImage */
	KERNEL_FORMAT_ARM64_IMAGE, /* arm64 Image, or Image.gz (unpacked) */
};

#define BOOT_MAX_SEGMENTS 16

/* One piece of the image to place in guest memory. */
struct boot_segment {
	uint64_t gpa;
	const uint8_t *data; /* points into the input or the owned buffer */
	uint64_t file_size;
	uint64_t mem_size;   /* >= file_size; the rest is zero-filled */
};

struct kernel_image {
	enum kernel_format format;
	struct boot_segment segments[BOOT_MAX_SEGMENTS];
	/*
	 * arm64 Image: one segment whose gpa is the header's text_offset, an
	 * offset from the 2 MiB-aligned base the machine code picks (it adds
	 * the base to gpa and entry); mem_size is image_size (BSS included:
	 * reserve all of it), file_size the file bytes within it.
	 */
	int nr_segments;
	uint64_t entry;      /* 64-bit entry GPA (x86), or text_offset (arm64) */
	uint64_t pvh_entry;  /* 32-bit PVH entry GPA, 0 if none */
	/* bzImage: the setup header (from offset 0x1f1) to copy into the zero
	 * page; NULL for ELF, where the loader synthesizes one. */
	const uint8_t *setup_header;
	size_t setup_header_len;
	uint16_t boot_protocol;     /* bzImage header version, e.g. 0x020f */
	uint32_t initrd_addr_max;   /* highest initrd byte address allowed */
	uint32_t cmdline_size;      /* max cmdline length, without NUL */
	int decompressed;           /* bzImage payload / Image.gz unpacked on the host */
	int from_cache;             /* ... or found in boot_options.kernel_cache */
	void *owned;                /* buffer to free with kernel_image_free */
};

struct boot_options {
	int bzimage_as_is; /* boot a bzImage through its own decompressor */
	/* A directory for decompressed bzImage payloads, keyed by the SHA-256
	 * of the compressed payload (created as needed), or NULL: none. */
	const char *kernel_cache;
};

/* Format of a kernel file from its first bytes. */
enum kernel_format boot_detect_format(const uint8_t *buf, size_t len);

/*
 * Parse a kernel image. -EINVAL: malformed/truncated; -ENOTSUP: unknown
 * compression or unsupported variant (e.g. a big-endian arm64 Image);
 * -ENOMEM. `buf` must outlive `out`. Every format parses on every host:
 * running it is the machine code's business.
 */
int boot_parse_kernel(const uint8_t *buf, size_t len,
		      const struct boot_options *opts, struct kernel_image *out);

void kernel_image_free(struct kernel_image *img);

/* Name of a format ("bzImage", "ELF", ...). */
const char *boot_format_name(enum kernel_format f);

/*
 * Raw binaries: copy `len` bytes to guest `gpa`. -ERANGE if it does not fit
 * in guest RAM.
 */
int boot_load_raw(struct vm *vm, uint64_t gpa, const uint8_t *buf, size_t len);

#endif

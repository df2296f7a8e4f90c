/* SPDX-License-Identifier: MIT */
/*
 * x86 bzImage (Linux boot protocol, Documentation/arch/x86/boot.rst).
 *
 * Default mode unpacks the compressed vmlinux on the host and loads its ELF
 * segments directly, so the guest skips the decompressor (minutes when the
 * guest is emulated). bzimage_as_is loads the protected-mode code the way a
 * boot loader does and enters the decompressor's 64-bit entry point.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot_internal.h"
#include "boot/decompress.h"
#include "boot/kcache.h"

/* Setup header field offsets from the start of the image. */
#define HDR_SETUP_SECTS 0x1f1
#define HDR_JUMP 0x200
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_CODE32_START 0x214
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PAYLOAD_OFFSET 0x248
#define HDR_PAYLOAD_LENGTH 0x24c
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260
/* Protocol 2.12 defines fields up to handover_offset, ending here. */
#define HDR_END_MIN 0x268
/* struct boot_params ends its setup header here (edd_mbr_sig_buffer). */
#define HDR_END_MAX 0x290

#define SECTOR_SIZE 512
#define DEFAULT_SETUP_SECTS 4
/* 2.12: xloadflags, and with XLF_KERNEL_64 the 64-bit entry. */
#define MIN_PROTOCOL 0x020c
#define XLF_KERNEL_64 (1u << 0)
#define DEFAULT_CMDLINE_SIZE 255

#define HIGH_LOAD_ADDR 0x100000ull /* the traditional 1 MiB load address */
#define ENTRY64_OFFSET 0x200       /* startup_64 of the decompressor */
#define LOW_4G 0x100000000ull

struct bz_hdr {
	size_t setup_size; /* boot sector + setup sectors, in bytes */
	uint16_t version;
};

static int read_hdr(const uint8_t *buf, size_t len, struct bz_hdr *h)
{
	unsigned int sects;

	if (len < HDR_VERSION + 2 || memcmp(buf + HDR_MAGIC, "HdrS", 4) != 0)
		return -EINVAL;
	sects = buf[HDR_SETUP_SECTS];
	if (sects == 0)
		sects = DEFAULT_SETUP_SECTS;
	h->setup_size = (size_t)(sects + 1) * SECTOR_SIZE;
	/* Also guarantees every header field up to HDR_END_MAX is readable. */
	if (h->setup_size > len)
		return -EINVAL;
	h->version = le16_at(buf + HDR_VERSION);
	if (h->version < MIN_PROTOCOL)
		return -ENOTSUP;
	if (!(le16_at(buf + HDR_XLOADFLAGS) & XLF_KERNEL_64))
		return -ENOTSUP;
	return 0;
}

/*
 * The header's length comes from the jump at 0x200 (a short jmp over the
 * header): its end is 0x202 plus the jump's displacement byte.
 */
static size_t setup_header_len(const uint8_t *buf)
{
	size_t end = 0x202 + (size_t)buf[HDR_JUMP + 1];

	if (end < HDR_END_MIN)
		end = HDR_END_MIN;
	if (end > HDR_END_MAX)
		end = HDR_END_MAX;
	return end - HDR_SETUP_SECTS;
}

static void fill_header_info(const uint8_t *buf, const struct bz_hdr *h,
			     struct kernel_image *out)
{
	out->format = KERNEL_FORMAT_BZIMAGE;
	out->setup_header = buf + HDR_SETUP_SECTS;
	out->setup_header_len = setup_header_len(buf);
	out->boot_protocol = h->version;
	out->initrd_addr_max = le32_at(buf + HDR_INITRD_ADDR_MAX);
	/* cmdline_size exists from 2.06; older kernels take 255 characters. */
	out->cmdline_size = h->version >= 0x0206
				    ? le32_at(buf + HDR_CMDLINE_SIZE)
				    : DEFAULT_CMDLINE_SIZE;
}

/*
 * Where the protected-mode code goes: pref_address when it is a sane high
 * address (a relocatable kernel then need not move itself), else
 * code32_start, else 1 MiB.
 */
static uint64_t as_is_load_addr(const uint8_t *buf, uint64_t mem_size)
{
	uint64_t pref = le64_at(buf + HDR_PREF_ADDRESS);
	uint64_t code32 = le32_at(buf + HDR_CODE32_START);

	if (pref >= HIGH_LOAD_ADDR && pref < LOW_4G &&
	    mem_size <= LOW_4G - pref)
		return pref;
	if (code32 >= HIGH_LOAD_ADDR && mem_size <= LOW_4G - code32)
		return code32;
	return HIGH_LOAD_ADDR;
}

static int load_as_is(const uint8_t *buf, size_t len, const struct bz_hdr *h,
		      struct kernel_image *out)
{
	struct boot_segment *s = &out->segments[0];
	uint64_t file_size = len - h->setup_size;
	uint64_t init_size = le32_at(buf + HDR_INIT_SIZE);

	if (file_size <= ENTRY64_OFFSET)
		return -EINVAL;
	s->file_size = file_size;
	/* init_size: room the decompressor needs to unpack in place. */
	s->mem_size = init_size > file_size ? init_size : file_size;
	if (s->mem_size >= LOW_4G - HIGH_LOAD_ADDR)
		return -EINVAL;
	s->data = buf + h->setup_size;
	s->gpa = as_is_load_addr(buf, s->mem_size);
	out->nr_segments = 1;
	out->entry = s->gpa + ENTRY64_OFFSET;
	return 0;
}

/*
 * Unpack the payload, or take it from the cache when there is one: an xz
 * payload of a distribution kernel costs seconds, its hash and a read of
 * the cached copy a fraction of that. A cache that cannot be read or
 * written only costs the decompression.
 */
static int decompress_cached(const uint8_t *in, size_t in_len, const char *cache,
			     uint8_t **out, size_t *out_len, int *hit)
{
	uint8_t key[SHA256_LEN];
	int ret;

	*hit = 0;
	if (cache && sha256(in, in_len, key))
		cache = NULL; /* no key, no cache */
	if (cache) {
		*hit = kcache_lookup(cache, key, out, out_len) == 0;
		if (*hit)
			return 0;
	}
	ret = boot_decompress(in, in_len, out, out_len);
	if (!ret && cache)
		kcache_store(cache, key, *out, *out_len);
	return ret;
}

static int load_decompressed(const uint8_t *buf, size_t len,
			     const struct bz_hdr *h, const char *cache,
			     struct kernel_image *out)
{
	uint64_t off = le32_at(buf + HDR_PAYLOAD_OFFSET);
	uint64_t plen = le32_at(buf + HDR_PAYLOAD_LENGTH);
	uint8_t *elf;
	size_t elf_len;
	int ret;

	/* payload_offset counts from the start of the protected-mode code. */
	off += h->setup_size;
	if (plen == 0 || !in_bounds(off, plen, len))
		return -EINVAL;
	ret = decompress_cached(buf + off, plen, cache, &elf, &elf_len, &out->from_cache);
	if (ret)
		return ret;
	out->owned = elf;
	ret = boot_parse_elf(elf, elf_len, out);
	if (ret)
		return ret; /* the caller frees `owned` */
	/* Still a bzImage to the loader: it copies our setup header. */
	out->format = KERNEL_FORMAT_BZIMAGE;
	out->decompressed = 1;
	return 0;
}

int boot_parse_bzimage(const uint8_t *buf, size_t len,
		       const struct boot_options *opts,
		       struct kernel_image *out)
{
	struct bz_hdr h;
	int ret;

	ret = read_hdr(buf, len, &h);
	if (ret)
		return ret;
	if (opts && opts->bzimage_as_is)
		ret = load_as_is(buf, len, &h, out);
	else
		ret = load_decompressed(buf, len, &h, opts ? opts->kernel_cache : NULL, out);
	if (ret)
		return ret;
	fill_header_info(buf, &h, out);
	return 0;
}

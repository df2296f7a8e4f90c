/* SPDX-License-Identifier: MIT */
/*
 * The snapshot state file's container: a header, then tagged sections, all
 * little-endian, checked whole before anything in it is used.
 *
 *   header, 32 bytes
 *     0  magic "VIBESNAP"
 *     8  u32 version (SNAP_VERSION: a reader takes only its own)
 *    12  u32 arch (SNAP_ARCH_*: restored only on the same arch)
 *    16  u64 body length (bytes after the header, at most SNAP_MAX_BODY)
 *    24  u32 CRC-32 (zlib's) of the body
 *    28  u32 CRC-32 of bytes 0-27
 *   body: sections back to back, each
 *     0  u32 tag (SNAP_SEC_*), 4 u32 instance (vCPU index, device
 *        index...), 8 u64 length, then the payload, zero-padded to 8 bytes
 *
 * What a payload holds is its owner's business: it is built with struct
 * snap_buf (put_*) and read back with struct snap_cursor (get_*), whose
 * reads past the end fail instead of reading. Not installed.
 */
#ifndef VIBEVMM_CORE_SNAPFILE_H
#define VIBEVMM_CORE_SNAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC "VIBESNAP"
#define SNAP_VERSION 1
#define SNAP_HEADER_LEN 32
#define SNAP_SECTION_HDR 16
#define SNAP_MAX_BODY (64u << 20)  /* state, not memory: generous */
#define SNAP_MAX_SECTIONS 4096

enum snap_arch { SNAP_ARCH_X86_64 = 1, SNAP_ARCH_ARM64 = 2 };

/* This build's arch (arch/<arch>/snapshot.c). */
enum snap_arch arch_snapshot_id(void);

/* A growing little-endian byte buffer. Allocation failures are sticky:
 * `failed` says so at the end, once. */
struct snap_buf {
	uint8_t *data;
	size_t len, cap;
	bool failed;
};

void snap_put_u8(struct snap_buf *b, uint8_t v);
void snap_put_u16(struct snap_buf *b, uint16_t v);
void snap_put_u32(struct snap_buf *b, uint32_t v);
void snap_put_u64(struct snap_buf *b, uint64_t v);
void snap_put_bytes(struct snap_buf *b, const void *p, size_t n);
void snap_buf_free(struct snap_buf *b);

/* Reading a payload: each get_* past the end returns 0 (or leaves the
 * bytes zeroed) and sets `bad`; check it once at the end. */
struct snap_cursor {
	const uint8_t *p;
	size_t left;
	bool bad;
};

uint8_t snap_get_u8(struct snap_cursor *c);
uint16_t snap_get_u16(struct snap_cursor *c);
uint32_t snap_get_u32(struct snap_cursor *c);
uint64_t snap_get_u64(struct snap_cursor *c);
void snap_get_bytes(struct snap_cursor *c, void *out, size_t n);
/* Whole and used up: not bad, nothing left over. */
bool snap_cursor_done(const struct snap_cursor *c);

/* ---- the file ---- */

/* Sections are appended to `body`; snap_file_bytes frames them. */
struct snap_writer {
	uint32_t arch;
	struct snap_buf body;
	unsigned sections;
};

void snap_writer_init(struct snap_writer *w, enum snap_arch arch);
/* Append a section (payload copied). */
void snap_add(struct snap_writer *w, uint32_t tag, uint32_t instance, const void *payload,
	      size_t len);
/* The whole file (header and body) into *out (malloc'ed, *out_len bytes):
 * 0, or -ENOMEM (also when an earlier append failed) or -EFBIG. */
int snap_file_bytes(struct snap_writer *w, uint8_t **out, size_t *out_len);
void snap_writer_free(struct snap_writer *w);

struct snap_section {
	uint32_t tag, instance;
	const uint8_t *payload;
	uint64_t len;
};

/* A checked file: its sections point into the caller's buffer. */
struct snap_file {
	uint32_t arch;
	struct snap_section *sections;
	unsigned nr;
};

/*
 * Check the file in buf (len bytes) whole: magic, version, arch (must be
 * want_arch), lengths, both checksums, every section inside the body with
 * its padding zero, no (tag, instance) twice, nothing after the last. 0 and
 * *f filled, or -EINVAL with a one-line reason in why (nothing allocated).
 */
int snap_parse(const uint8_t *buf, size_t len, enum snap_arch want_arch, struct snap_file *f,
	       char *why, size_t why_len);
void snap_file_free(struct snap_file *f);

/* The section (tag, instance), or NULL; a cursor over it. */
const struct snap_section *snap_find(const struct snap_file *f, uint32_t tag,
				     uint32_t instance);
struct snap_cursor snap_cursor_of(const struct snap_section *s);

#endif

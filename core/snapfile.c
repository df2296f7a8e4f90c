/* SPDX-License-Identifier: MIT */
/* The snapshot state file's container; see snapfile.h. Pure: no I/O. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc.h"
#include "core/snapfile.h"
#include "utils.h"

/* ---- little-endian buffers ---- */

static bool grow(struct snap_buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 256;
	uint8_t *p;

	if (b->failed)
		return false;
	if (n > SIZE_MAX - b->len)
		return !(b->failed = true);
	while (cap < b->len + n) {
		if (cap > SIZE_MAX / 2)
			return !(b->failed = true);
		cap *= 2;
	}
	if (cap == b->cap)
		return true;
	p = realloc(b->data, cap);
	if (!p)
		return !(b->failed = true);
	b->data = p;
	b->cap = cap;
	return true;
}

static void put_le(struct snap_buf *b, uint64_t v, unsigned n)
{
	if (!grow(b, n))
		return;
	for (unsigned i = 0; i < n; i++)
		b->data[b->len++] = (uint8_t)(v >> (8 * i));
}

void snap_put_u8(struct snap_buf *b, uint8_t v) { put_le(b, v, 1); }
void snap_put_u16(struct snap_buf *b, uint16_t v) { put_le(b, v, 2); }
void snap_put_u32(struct snap_buf *b, uint32_t v) { put_le(b, v, 4); }
void snap_put_u64(struct snap_buf *b, uint64_t v) { put_le(b, v, 8); }

void snap_put_bytes(struct snap_buf *b, const void *p, size_t n)
{
	if (!n || !grow(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void snap_buf_free(struct snap_buf *b)
{
	free(b->data);
	*b = (struct snap_buf){ 0 };
}

static uint64_t get_le(struct snap_cursor *c, unsigned n)
{
	uint64_t v = 0;

	if (c->bad || c->left < n) {
		c->bad = true;
		return 0;
	}
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)c->p[i] << (8 * i);
	c->p += n;
	c->left -= n;
	return v;
}

uint8_t snap_get_u8(struct snap_cursor *c) { return (uint8_t)get_le(c, 1); }
uint16_t snap_get_u16(struct snap_cursor *c) { return (uint16_t)get_le(c, 2); }
uint32_t snap_get_u32(struct snap_cursor *c) { return (uint32_t)get_le(c, 4); }
uint64_t snap_get_u64(struct snap_cursor *c) { return get_le(c, 8); }

void snap_get_bytes(struct snap_cursor *c, void *out, size_t n)
{
	if (c->bad || c->left < n) {
		c->bad = true;
		memset(out, 0, n);
		return;
	}
	memcpy(out, c->p, n);
	c->p += n;
	c->left -= n;
}

bool snap_cursor_done(const struct snap_cursor *c)
{
	return !c->bad && c->left == 0;
}

/* ---- writing ---- */

static size_t padding(uint64_t len)
{
	return (size_t)((8 - (len & 7)) & 7);
}

void snap_writer_init(struct snap_writer *w, enum snap_arch arch)
{
	*w = (struct snap_writer){ .arch = arch };
}

void snap_add(struct snap_writer *w, uint32_t tag, uint32_t instance, const void *payload,
	      size_t len)
{
	static const uint8_t zero[8];

	snap_put_u32(&w->body, tag);
	snap_put_u32(&w->body, instance);
	snap_put_u64(&w->body, len);
	snap_put_bytes(&w->body, payload, len);
	snap_put_bytes(&w->body, zero, padding(len));
	w->sections++;
}

static void le32_at(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int snap_file_bytes(struct snap_writer *w, uint8_t **out, size_t *out_len)
{
	uint8_t *f;

	if (w->body.failed)
		return -ENOMEM;
	if (w->body.len > SNAP_MAX_BODY || w->sections > SNAP_MAX_SECTIONS)
		return -EFBIG;
	f = malloc(SNAP_HEADER_LEN + w->body.len);
	if (!f)
		return -ENOMEM;
	memcpy(f, SNAP_MAGIC, 8);
	le32_at(f + 8, SNAP_VERSION);
	le32_at(f + 12, w->arch);
	le32_at(f + 16, (uint32_t)w->body.len);
	le32_at(f + 20, (uint32_t)((uint64_t)w->body.len >> 32));
	le32_at(f + 24, crc32_of(w->body.data, w->body.len));
	le32_at(f + 28, crc32_of(f, 28));
	if (w->body.len)
		memcpy(f + SNAP_HEADER_LEN, w->body.data, w->body.len);
	*out = f;
	*out_len = SNAP_HEADER_LEN + w->body.len;
	return 0;
}

void snap_writer_free(struct snap_writer *w)
{
	snap_buf_free(&w->body);
	w->sections = 0;
}

/* ---- reading ---- */

static const char *arch_name(uint32_t arch)
{
	return arch == SNAP_ARCH_X86_64 ? "x86_64" : arch == SNAP_ARCH_ARM64 ? "arm64" : "unknown";
}

static int check_header(const uint8_t *buf, size_t len, enum snap_arch want, uint64_t *body_len,
			char *why, size_t why_len)
{
	struct snap_cursor c = { buf + 8, SNAP_HEADER_LEN - 8, false };
	uint32_t version, arch, body_crc, header_crc;

	if (len < SNAP_HEADER_LEN || memcmp(buf, SNAP_MAGIC, 8))
		return fail_why(EINVAL, why, why_len, "not a vibevmm snapshot state file");
	version = snap_get_u32(&c);
	arch = snap_get_u32(&c);
	*body_len = snap_get_u64(&c);
	body_crc = snap_get_u32(&c);
	header_crc = snap_get_u32(&c);
	if (header_crc != crc32_of(buf, 28))
		return fail_why(EINVAL, why, why_len,
				"snapshot header is corrupted (checksum mismatch)");
	if (version != SNAP_VERSION)
		return fail_why(EINVAL, why, why_len,
				"snapshot format version %u; this vibevmm reads version %u", version,
				SNAP_VERSION);
	if (arch != (uint32_t)want)
		return fail_why(EINVAL, why, why_len, "snapshot of an %s VM (arch %u); this is %s",
				arch_name(arch), arch, arch_name(want));
	if (*body_len > SNAP_MAX_BODY || *body_len != len - SNAP_HEADER_LEN)
		return fail_why(EINVAL, why, why_len,
				"snapshot is %zu bytes, its header says %llu (truncated or extended)",
				len, (unsigned long long)(*body_len + SNAP_HEADER_LEN));
	if (body_crc != crc32_of(buf + SNAP_HEADER_LEN, (size_t)*body_len))
		return fail_why(EINVAL, why, why_len, "snapshot is corrupted (checksum mismatch)");
	return 0;
}

/* The next section at c: in bounds, padding zero. */
static int next_section(struct snap_cursor *c, struct snap_section *s, char *why, size_t why_len)
{
	size_t pad;

	s->tag = snap_get_u32(c);
	s->instance = snap_get_u32(c);
	s->len = snap_get_u64(c);
	if (c->bad || s->len > c->left)
		return fail_why(EINVAL, why, why_len, "snapshot section %u/%u runs past the end",
				s->tag, s->instance);
	s->payload = c->p;
	c->p += s->len;
	c->left -= (size_t)s->len;
	pad = padding(s->len);
	for (size_t i = 0; i < pad; i++)
		if (snap_get_u8(c) != 0)
			return fail_why(EINVAL, why, why_len, "snapshot section %u/%u: bad padding",
					s->tag, s->instance);
	return 0;
}

static unsigned count_sections(struct snap_cursor c)
{
	struct snap_section s;
	unsigned n = 0;

	while (c.left && n <= SNAP_MAX_SECTIONS && !next_section(&c, &s, NULL, 0))
		n++;
	return n;
}

static bool seen_before(const struct snap_file *f, const struct snap_section *s)
{
	for (unsigned i = 0; i < f->nr; i++)
		if (f->sections[i].tag == s->tag && f->sections[i].instance == s->instance)
			return true;
	return false;
}

int snap_parse(const uint8_t *buf, size_t len, enum snap_arch want_arch, struct snap_file *f,
	       char *why, size_t why_len)
{
	struct snap_cursor c;
	uint64_t body_len = 0;
	unsigned n;
	int err;

	*f = (struct snap_file){ 0 };
	if ((err = check_header(buf, len, want_arch, &body_len, why, why_len)))
		return err;
	c = (struct snap_cursor){ buf + SNAP_HEADER_LEN, (size_t)body_len, false };
	n = count_sections(c);
	if (n > SNAP_MAX_SECTIONS)
		return fail_why(EINVAL, why, why_len, "snapshot has more than %d sections",
				SNAP_MAX_SECTIONS);
	/* One more than counted: where the counting stopped, a bad section
	 * follows, and parsing it again says what is wrong with it. */
	f->sections = calloc(n + 1, sizeof(*f->sections));
	if (!f->sections)
		return fail_why(ENOMEM, why, why_len, "out of memory");
	while (c.left) {
		struct snap_section *s = &f->sections[f->nr];

		if ((err = next_section(&c, s, why, why_len)))
			break;
		if (seen_before(f, s)) {
			err = fail_why(EINVAL, why, why_len, "snapshot section %u/%u appears twice",
				       s->tag, s->instance);
			break;
		}
		f->nr++;
	}
	if (!err && c.left)
		err = fail_why(EINVAL, why, why_len,
			       "snapshot has stray bytes after its sections");
	if (err)
		snap_file_free(f);
	f->arch = err ? 0 : want_arch;
	return err;
}

void snap_file_free(struct snap_file *f)
{
	free(f->sections);
	*f = (struct snap_file){ 0 };
}

const struct snap_section *snap_find(const struct snap_file *f, uint32_t tag, uint32_t instance)
{
	for (unsigned i = 0; i < f->nr; i++)
		if (f->sections[i].tag == tag && f->sections[i].instance == instance)
			return &f->sections[i];
	return NULL;
}

struct snap_cursor snap_cursor_of(const struct snap_section *s)
{
	return (struct snap_cursor){ s->payload, (size_t)s->len, false };
}

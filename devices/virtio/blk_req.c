/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk requests (virtio 1.2 section 5.2.6): parsing a chain into
 * header, data and status byte, and carrying the request out on an image fd.
 * No transport here, so the fuzzer drives it directly.
 *
 * The header is copied out before use. Data moves with preadv/pwritev2
 * straight between the image and the guest's buffers (already checked against
 * guest RAM by the queue walker). Every request is checked against the
 * capacity with overflow-free arithmetic before any I/O.
 *
 * Durability: FLUSH is an fdatasync (here, or on blk.c's ring between
 * virtio_blk_flush_now and virtio_blk_flush_finish). A failed one is remembered
 * (b->sync_error), because the kernel tells only one caller about a
 * writeback error: from then on FLUSH and every data change fail until the
 * device is reset. Without a negotiated FLUSH the device is write-through:
 * writes go out with RWF_DSYNC, which makes just the written range durable
 * inside the same system call (one syscall per write instead of pwritev plus
 * fdatasync), and discard / write-zeroes are followed by a sync.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "utils.h"

int virtio_blk_parse_request(const struct iovec *iov, unsigned nr_out,
			     unsigned nr_in, struct iovec *data,
			     unsigned max_data, struct virtio_blk_req *r)
{
	const struct iovec *in = iov + nr_out;
	uint64_t out_len = 0, in_len = 0;
	uint8_t hdr[VIRTIO_BLK_HDR_BYTES];
	const struct iovec *src;
	unsigned src_n;
	size_t skip, len, got;

	memset(r, 0, sizeof(*r));
	r->data = data;
	for (unsigned i = 0; i < nr_out; i++)
		out_len += iov[i].iov_len;
	for (unsigned i = 0; i < nr_in; i++)
		in_len += in[i].iov_len;
	if (!in_len)
		return -EINVAL; /* nowhere to put the status */
	while (!in[nr_in - 1].iov_len)
		nr_in--; /* the walker makes no empty entries; stay safe anyway */
	/* The status is the chain's last byte (5.2.6: in[] ends with it). */
	r->status = (uint8_t *)in[nr_in - 1].iov_base + in[nr_in - 1].iov_len - 1;
	if (iov_to_buf(iov, nr_out, 0, hdr, sizeof(hdr)) < sizeof(hdr)) {
		r->bad_header = true;
		return 0;
	}
	memcpy(&r->type, hdr, sizeof(r->type));
	memcpy(&r->sector, hdr + 8, sizeof(r->sector));
	if (r->type == VIRTIO_BLK_T_OUT || r->type == VIRTIO_BLK_T_DISCARD ||
	    r->type == VIRTIO_BLK_T_WRITE_ZEROES) {
		src = iov, src_n = nr_out, skip = sizeof(hdr), len = out_len - sizeof(hdr);
	} else {
		src = in, src_n = nr_in, skip = 0, len = in_len - 1;
	}
	r->nr_data = iov_slice(src, src_n, skip, len, data, max_data, &got);
	r->data_len = got;
	return got < len ? -E2BIG : 0;
}

/* Sector range check without overflow: [sector, sector + len/512) in capacity. */
static bool in_range(const struct virtio_blk_backend *b, uint64_t sector,
		     uint64_t len)
{
	return sector <= b->capacity &&
	       len / VIRTIO_BLK_SECTOR <= b->capacity - sector;
}

/* The host I/O calls, through the test hooks when set. */
static ssize_t blk_pwritev2(const struct virtio_blk_backend *b, int fd,
			    const struct iovec *iov, int cnt, off_t off,
			    int flags)
{
	if (b->io.pwritev2)
		return b->io.pwritev2(b->io.opaque, fd, iov, cnt, off, flags);
	return pwritev2(fd, iov, cnt, off, flags);
}

bool virtio_blk_direct_ok(const struct virtio_blk_backend *b,
			  const struct iovec *iov, unsigned n, uint64_t off)
{
	uint64_t bits = off;

	if (!b->dio_off_align)
		return true;
	for (unsigned i = 0; i < n; i++)
		bits |= iov[i].iov_len;
	if (bits & (b->dio_off_align - 1))
		return false;
	for (unsigned i = 0; i < n; i++)
		if ((uintptr_t)iov[i].iov_base & (b->dio_mem_align - 1))
			return false;
	return true;
}

/* cache=none: what O_DIRECT cannot take goes through the page cache (the
 * same file: Linux writes cached pages back before a direct access to
 * them, and fdatasync covers both). */
static int fd_for(const struct virtio_blk_backend *b, const struct iovec *iov,
		  unsigned n, uint64_t off)
{
	return virtio_blk_direct_ok(b, iov, n, off) ? b->fd : b->buf_fd;
}

static int blk_sync(const struct virtio_blk_backend *b)
{
	int r = b->io.sync ? b->io.sync(b->io.opaque, b->fd) : fdatasync(b->fd);

	return r < 0 ? (errno ? -errno : -EIO) : 0;
}

/* Flags for data writes: RWF_DSYNC makes a write-through write durable
 * before the call returns. */
static int write_flags(const struct virtio_blk_backend *b)
{
	return b->write_through ? RWF_DSYNC : 0;
}

/* A sync failed: keep its errno (the first one) so that nothing after it
 * claims durability. */
static void sync_failed(struct virtio_blk_backend *b, int err)
{
	if (!b->sync_error)
		b->sync_error = err < 0 ? -err : EIO;
}

/* Make everything written so far durable; the request's status. */
static uint8_t sync_now(struct virtio_blk_backend *b)
{
	int err = blk_sync(b);

	if (err)
		sync_failed(b, err);
	return err ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

/* preadv/pwritev2 until done; a short transfer that makes no progress
 * (the image shrank under us) or any error fails the request. */
static int transfer(const struct virtio_blk_backend *b, struct iovec *iov,
		    unsigned n, uint64_t off, bool write, uint64_t *done)
{
	*done = 0;
	while (n) {
		int cnt = (int)MIN(n, (unsigned)IOV_MAX);
		int fd = fd_for(b, iov, (unsigned)cnt, off);
		ssize_t r = write ? blk_pwritev2(b, fd, iov, cnt, (off_t)off, write_flags(b))
				  : preadv(fd, iov, cnt, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		off += (uint64_t)r;
		*done += (uint64_t)r;
		/* Advance past what was transferred (iov is our private copy). */
		while (n && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++, n--;
		}
		if (n && r) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

/* Requests that change data are refused on a read-only disk, and after a
 * failed sync: what the driver wrote since its last good flush may be gone,
 * and anything written now could never be made durable knowingly. */
static bool may_change_data(const struct virtio_blk_backend *b)
{
	return !b->readonly && !b->sync_error;
}

uint8_t virtio_blk_rw_check(const struct virtio_blk_backend *b,
			    const struct virtio_blk_req *r)
{
	bool write = r->type == VIRTIO_BLK_T_OUT;

	if (r->data_len % VIRTIO_BLK_SECTOR || !in_range(b, r->sector, r->data_len))
		return VIRTIO_BLK_S_IOERR;
	if (write && !may_change_data(b))
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

/* The end of a transfer `err` (0 or -errno) that moved `done` bytes. */
static uint8_t rw_result(struct virtio_blk_backend *b, bool write, int err,
			 uint64_t done, uint32_t *written)
{
	/* A write-through write that failed may have failed in its sync,
	 * which then consumed the kernel's one report of a writeback error. */
	if (err && write && b->write_through)
		sync_failed(b, err);
	/* A write that was under way when a sync failed (io_uring: a flush
	 * on another queue) fails like those after it: every write the
	 * driver learns of after the failure does. */
	if (!err && write && b->sync_error)
		err = -EIO;
	if (!write)
		*written = (uint32_t)done; /* <= the chain's 64 MiB bound */
	return err ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

uint8_t virtio_blk_rw_finish(struct virtio_blk_backend *b, bool write,
			     struct iovec *iov, unsigned n, uint64_t off,
			     int64_t res, uint32_t *written)
{
	uint64_t total = 0, more = 0;
	int err = 0;

	*written = 0;
	for (unsigned i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (res < 0 || (uint64_t)res > total)
		return rw_result(b, write, res < 0 ? (int)res : -EIO, 0, written);
	if ((uint64_t)res < total) {
		/* Short: the rest synchronously, from where it stopped. */
		unsigned skip_n = 0;
		uint64_t left = (uint64_t)res;

		while (skip_n < n && left >= iov[skip_n].iov_len)
			left -= iov[skip_n++].iov_len;
		iov[skip_n].iov_base = (uint8_t *)iov[skip_n].iov_base + left;
		iov[skip_n].iov_len -= left;
		err = transfer(b, iov + skip_n, n - skip_n, off + (uint64_t)res,
			       write, &more);
	}
	return rw_result(b, write, err, (uint64_t)res + more, written);
}

static uint8_t do_rw(struct virtio_blk_backend *b,
		     const struct virtio_blk_req *r, bool write,
		     uint32_t *written)
{
	uint8_t st = virtio_blk_rw_check(b, r);
	uint64_t done;
	int err;

	if (st != VIRTIO_BLK_S_OK)
		return st;
	err = transfer(b, r->data, r->nr_data, r->sector * VIRTIO_BLK_SECTOR,
		       write, &done);
	return rw_result(b, write, err, done, written);
}

bool virtio_blk_flush_now(const struct virtio_blk_backend *b, uint8_t *st)
{
	if (b->readonly)
		*st = VIRTIO_BLK_S_OK; /* nothing of ours to make durable */
	else if (b->sync_error)
		*st = VIRTIO_BLK_S_IOERR; /* still lost: never "fixed" by a retry */
	else
		return false;
	return true;
}

uint8_t virtio_blk_flush_finish(struct virtio_blk_backend *b, int res)
{
	if (res)
		sync_failed(b, res);
	return b->sync_error ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

static uint8_t do_flush(struct virtio_blk_backend *b)
{
	uint8_t st;

	if (virtio_blk_flush_now(b, &st))
		return st;
	return virtio_blk_flush_finish(b, blk_sync(b));
}

static uint8_t do_get_id(const struct virtio_blk_backend *b,
			 const struct virtio_blk_req *r, uint32_t *written)
{
	/* 20 bytes, NUL-padded, no terminator when it is 20 long (5.2.6). */
	*written = (uint32_t)iov_from_buf(r->data, r->nr_data, 0, b->serial,
					  MIN(r->data_len, (uint64_t)VIRTIO_BLK_ID_BYTES));
	return VIRTIO_BLK_S_OK;
}

/* Zeroes [off, off + len) with plain writes: the fallback where fallocate
 * cannot. */
static int write_zeroes_slowly(const struct virtio_blk_backend *b,
			       uint64_t off, uint64_t len)
{
	static const uint8_t zeroes[64 << 10];

	while (len) {
		size_t n = (size_t)MIN(len, (uint64_t)sizeof(zeroes));
		struct iovec iov = { (void *)zeroes, n };
		/* No RWF_DSYNC here: the caller syncs once at the end. */
		ssize_t w = blk_pwritev2(b, fd_for(b, &iov, 1, off), &iov, 1, (off_t)off, 0);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -EIO;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

/* One segment. Discard is a hint: where holes cannot be punched it does
 * nothing. Write-zeroes must leave zeroes, by whichever means works. */
static int discard_or_zero(const struct virtio_blk_backend *b, uint32_t type,
			   uint64_t off, uint64_t len, bool unmap)
{
	int mode = FALLOC_FL_KEEP_SIZE;

	if (type == VIRTIO_BLK_T_DISCARD || unmap)
		mode |= FALLOC_FL_PUNCH_HOLE;
	else
		mode |= FALLOC_FL_ZERO_RANGE;
	if (b->punch_holes && fallocate(b->fd, mode, (off_t)off, (off_t)len) == 0)
		return 0;
	if (type == VIRTIO_BLK_T_DISCARD)
		return 0;
	return write_zeroes_slowly(b, off, len);
}

struct dwz_seg {
	uint64_t sector;
	uint32_t count, flags;
};

static struct dwz_seg dwz_seg_at(const uint8_t *p)
{
	struct dwz_seg s;

	memcpy(&s.sector, p, 8); /* little-endian host (see queue.c) */
	memcpy(&s.count, p + 8, 4);
	memcpy(&s.flags, p + 12, 4);
	return s;
}

/* DISCARD and WRITE_ZEROES (5.2.6.2): every segment is checked before any
 * is carried out; unknown flags, too many or misshapen segments: UNSUPP;
 * a range beyond the disk: IOERR. They change data, so they are refused
 * like writes after a failed sync, and made durable before they complete
 * when the device is write-through. */
static uint8_t do_discard_or_zero(struct virtio_blk_backend *b,
				  const struct virtio_blk_req *r)
{
	unsigned max = r->type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_MAX_DISCARD_SEG
						       : VIRTIO_BLK_MAX_WZ_SEG;
	uint8_t seg[VIRTIO_BLK_MAX_DISCARD_SEG][VIRTIO_BLK_SEG_BYTES];
	uint32_t allowed = r->type == VIRTIO_BLK_T_DISCARD ? 0 : VIRTIO_BLK_WZ_UNMAP;
	unsigned n = (unsigned)(r->data_len / VIRTIO_BLK_SEG_BYTES);

	if (!may_change_data(b))
		return VIRTIO_BLK_S_IOERR;
	if (!n || n > max || r->data_len % VIRTIO_BLK_SEG_BYTES)
		return VIRTIO_BLK_S_UNSUPP;
	iov_to_buf(r->data, r->nr_data, 0, seg, (size_t)n * VIRTIO_BLK_SEG_BYTES);
	for (unsigned i = 0; i < n; i++) {
		struct dwz_seg s = dwz_seg_at(seg[i]);

		if (s.flags & ~allowed || s.count > VIRTIO_BLK_MAX_DWZ_SECTORS)
			return VIRTIO_BLK_S_UNSUPP;
		if (!in_range(b, s.sector, (uint64_t)s.count * VIRTIO_BLK_SECTOR))
			return VIRTIO_BLK_S_IOERR;
	}
	for (unsigned i = 0; i < n; i++) {
		struct dwz_seg s = dwz_seg_at(seg[i]);

		if (discard_or_zero(b, r->type, s.sector * VIRTIO_BLK_SECTOR,
				    (uint64_t)s.count * VIRTIO_BLK_SECTOR,
				    s.flags & VIRTIO_BLK_WZ_UNMAP))
			return VIRTIO_BLK_S_IOERR;
	}
	return b->write_through ? sync_now(b) : VIRTIO_BLK_S_OK;
}

uint8_t virtio_blk_execute(struct virtio_blk_backend *b,
			   const struct virtio_blk_req *r, uint32_t *written)
{
	*written = 0;
	if (r->bad_header)
		return VIRTIO_BLK_S_IOERR;
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		return do_rw(b, r, false, written);
	case VIRTIO_BLK_T_OUT:
		return do_rw(b, r, true, written);
	case VIRTIO_BLK_T_FLUSH:
		return do_flush(b);
	case VIRTIO_BLK_T_GET_ID:
		return do_get_id(b, r, written);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return do_discard_or_zero(b, r);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk's image: opening it (the lock, the size, cache=none's O_DIRECT
 * descriptor and its alignment, the serial) into a struct
 * virtio_blk_backend, for the disk's creation and for
 * virtio_blk_replace_image, which hands a newly opened image to the worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/virtio/blk.h"
#include "utils.h"
#include "vm.h"

/* cache=none: O_DIRECT's alignment for this file (statx STATX_DIOALIGN,
 * Linux 6.1; a block device's logical block size; else a safe 4 KiB). */
static void dio_alignment(struct virtio_blk_backend *be, const struct stat *st)
{
	struct statx sx;
	int lbs = 0;

	be->dio_mem_align = be->dio_off_align = 4096;
	if (statx(be->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align) {
		be->dio_mem_align = MAX(sx.stx_dio_mem_align, 1u);
		be->dio_off_align = sx.stx_dio_offset_align;
	} else if (S_ISBLK(st->st_mode) && ioctl(be->fd, BLKSSZGET, &lbs) == 0 && lbs > 0) {
		be->dio_mem_align = be->dio_off_align = (uint32_t)lbs;
	}
}

/* cache=none: reopen the image O_DIRECT; the first fd stays for what
 * O_DIRECT cannot take. */
static int open_direct(struct virtio_blk_backend *be, const char *path,
		       const struct stat *st, char *why, size_t len)
{
	int fd = open(path, (be->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_DIRECT);

	if (fd < 0)
		return fail_why(errno, why, len, "%s: cache=none: %s%s", path, strerror(errno),
				errno == EINVAL ? " (the file system has no O_DIRECT)" : "");
	be->buf_fd = be->fd;
	be->fd = fd;
	dio_alignment(be, st);
	return 0;
}

/* Shared for read-only, exclusive for read-write: two VMs never write one
 * image, nor read one that another VM writes. */
static int lock_image(struct virtio_blk_backend *be, const char *path, char *why, size_t len)
{
	if (flock(be->fd, (be->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0)
		return 0;
	return fail_why(errno, why, len, "%s: %s", path, errno == EWOULDBLOCK ?
			"image is in use (locked by another process)" : strerror(errno));
}

/* GET_ID: the image's file name, at most 20 bytes (the guest shows it in
 * /sys/block/vdX/serial). */
static void make_serial(struct virtio_blk_backend *be, const char *path)
{
	const char *base = strrchr(path, '/');

	base = base && base[1] ? base + 1 : path;
	/* Not a C string: NUL-padded, unterminated when 20 bytes long. */
	memset(be->serial, 0, sizeof(be->serial));
	memcpy(be->serial, base, MIN(strlen(base), sizeof(be->serial)));
}

static int check_kind(const struct stat *st, const char *path, char *why, size_t len)
{
	if (S_ISDIR(st->st_mode))
		return fail_why(EISDIR, why, len, "%s: is a directory, not a disk image", path);
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode))
		return fail_why(EINVAL, why, len, "%s: not a regular file or block device", path);
	return 0;
}

/* The image's size now, in whole sectors. */
static int measure(struct virtio_blk_backend *be, struct vm *vm, const char *path, char *why,
		   size_t len)
{
	off_t size = lseek(be->fd, 0, SEEK_END);

	if (size < 0)
		return fail_why(errno, why, len, "%s: cannot get its size: %s", path,
				strerror(errno));
	if (size % VIRTIO_BLK_SECTOR)
		vm_info(vm, "%s: size %lld is not a multiple of 512; the last %lld bytes are not visible",
			path, (long long)size, (long long)(size % VIRTIO_BLK_SECTOR));
	be->capacity = (uint64_t)size / VIRTIO_BLK_SECTOR;
	return 0;
}

bool blk_image_is(const struct virtio_blk_backend *be, const char *path)
{
	struct stat a, b;

	return stat(path, &a) == 0 && fstat(be->fd, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

int blk_image_again(struct virtio_blk_backend *img, const struct virtio_blk_backend *cur,
		    struct vm *vm, const char *path, char *why, size_t len)
{
	*img = *cur;
	img->fd = img->buf_fd = -1;
	/* Duplicates share the open file (and its lock) with cur's. */
	img->fd = fcntl(cur->fd, F_DUPFD_CLOEXEC, 0);
	if (img->fd < 0)
		return fail_why(errno, why, len, "%s: %s", path, strerror(errno));
	img->buf_fd = cur->buf_fd == cur->fd ? img->fd : fcntl(cur->buf_fd, F_DUPFD_CLOEXEC, 0);
	if (img->buf_fd < 0)
		return fail_why(errno, why, len, "%s: %s", path, strerror(errno));
	return measure(img, vm, path, why, len);
}

int blk_image_open(struct virtio_blk_backend *be, struct vm *vm, const char *path,
		   bool readonly, enum virtio_blk_cache cache, char *why, size_t len)
{
	struct stat st;
	int err;

	be->fd = be->buf_fd = -1;
	be->readonly = readonly;
	be->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (be->fd < 0)
		return fail_why(errno, why, len, "%s: %s%s", path, strerror(errno),
				!readonly && (errno == EACCES || errno == EROFS) ?
				" (add ,ro for a read-only disk)" : "");
	if (fstat(be->fd, &st) < 0)
		return fail_why(errno, why, len, "%s: %s", path, strerror(errno));
	if ((err = check_kind(&st, path, why, len)) || (err = lock_image(be, path, why, len)) ||
	    (err = measure(be, vm, path, why, len)))
		return err;
	be->punch_holes = true; /* regular files and block devices take fallocate */
	be->write_through = true; /* until a driver negotiates FLUSH */
	make_serial(be, path);
	if (cache == VIRTIO_BLK_CACHE_NONE)
		return open_direct(be, path, &st, why, len);
	be->buf_fd = be->fd;
	return 0;
}

void blk_image_close(struct virtio_blk_backend *be)
{
	if (be->buf_fd >= 0 && be->buf_fd != be->fd)
		close(be->buf_fd);
	if (be->fd >= 0)
		close(be->fd); /* drops the flock too */
	be->fd = be->buf_fd = -1;
}

/* be takes img's image (its files, size, alignment, serial); the driver's
 * and the device's state (write_through, readonly, io) stay. img is left
 * holding be's old descriptors, for blk_image_close. */
void blk_image_take(struct virtio_blk_backend *be, struct virtio_blk_backend *img)
{
	int old_fd = be->fd, old_buf_fd = be->buf_fd;

	be->fd = img->fd;
	be->buf_fd = img->buf_fd;
	be->dio_mem_align = img->dio_mem_align;
	be->dio_off_align = img->dio_off_align;
	be->capacity = img->capacity;
	be->punch_holes = img->punch_holes;
	memcpy(be->serial, img->serial, sizeof(be->serial));
	img->fd = old_fd;
	img->buf_fd = old_buf_fd;
}

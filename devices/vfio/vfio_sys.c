/* SPDX-License-Identifier: MIT */
/* The host's VFIO system calls (vfio_sys.h says why they are a table). */
#include "devices/vfio/vfio_sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int host_open(void *ctx, const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int host_close(void *ctx, int fd)
{
	return close(fd) ? -errno : 0;
}

static int host_ioctl(void *ctx, int fd, unsigned long req, unsigned long arg)
{
	int r = ioctl(fd, req, arg);

	return r < 0 ? -errno : r;
}

static ssize_t host_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
	ssize_t n = pread(fd, buf, len, off);

	return n < 0 ? -errno : n;
}

static ssize_t host_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
	ssize_t n = pwrite(fd, buf, len, off);

	return n < 0 ? -errno : n;
}

static void *host_mmap(void *ctx, size_t len, int prot, int flags, int fd, off_t off, int *err)
{
	void *p = mmap(NULL, len, prot, flags, fd, off);

	*err = p == MAP_FAILED ? -errno : 0;
	return p;
}

static int host_munmap(void *ctx, void *addr, size_t len)
{
	return munmap(addr, len) ? -errno : 0;
}

static ssize_t host_readlink(void *ctx, const char *path, char *buf, size_t len)
{
	ssize_t n;

	if (!len)
		return -EINVAL;
	n = readlink(path, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

static int host_list_dir(void *ctx, const char *path, int (*each)(void *arg, const char *name),
			 void *arg)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int r = 0;

	if (!d)
		return -errno;
	while (!r && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			r = each(arg, e->d_name);
	closedir(d);
	return r;
}

static int host_getrlimit(void *ctx, int resource, struct rlimit *rl)
{
	return getrlimit(resource, rl) ? -errno : 0;
}

/* capget(2) without libcap: the effective set's CAP_IPC_LOCK bit. */
static bool host_ipc_lock_capable(void *ctx)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data))
		return false;
	return data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective & CAP_TO_MASK(CAP_IPC_LOCK);
}

const struct vfio_sys vfio_sys_host = {
	.root = "",
	.ctx = NULL,
	.open = host_open,
	.close = host_close,
	.ioctl = host_ioctl,
	.pread = host_pread,
	.pwrite = host_pwrite,
	.mmap = host_mmap,
	.munmap = host_munmap,
	.readlink = host_readlink,
	.list_dir = host_list_dir,
	.getrlimit = host_getrlimit,
	.ipc_lock_capable = host_ipc_lock_capable,
};

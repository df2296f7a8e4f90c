/* SPDX-License-Identifier: MIT */
/*
 * The host system calls the VFIO code makes, as a table.
 *
 * Why: VFIO needs an IOMMU and a device bound to vfio-pci, which most
 * machines that build and test Vibe-VMM (CI, laptops, nested test hosts)
 * do not have. Everything devices/vfio/ does to the host goes through one
 * of these entries, so a unit test hands in its own table: a fake kernel
 * answering the container, group and device ioctls from a scripted model,
 * and a sysfs tree in a temporary directory (`root`). The real table,
 * vfio_sys_host, is const and calls the kernel directly; nothing else in
 * devices/vfio/ touches the host.
 *
 * Every entry returns what the system call returns, with failures as
 * -errno instead of -1 and errno (mmap: MAP_FAILED and -errno in *err).
 * `ctx` is the table's own, passed back on every call (NULL for the host).
 */
#ifndef VIBEVMM_DEVICES_VFIO_VFIO_SYS_H
#define VIBEVMM_DEVICES_VFIO_VFIO_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

struct vfio_sys {
	/* Prefix of every path opened or read (sysfs, /dev/vfio): "" on the
	 * host, a temporary directory in tests. */
	const char *root;
	void *ctx;

	int (*open)(void *ctx, const char *path, int flags);
	int (*close)(void *ctx, int fd);
	/* `arg` is the pointer or the value the request takes. */
	int (*ioctl)(void *ctx, int fd, unsigned long req, unsigned long arg);
	ssize_t (*pread)(void *ctx, int fd, void *buf, size_t len, off_t off);
	ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len, off_t off);
	void *(*mmap)(void *ctx, size_t len, int prot, int flags, int fd, off_t off, int *err);
	int (*munmap)(void *ctx, void *addr, size_t len);
	/* The link's target, NUL-terminated, its length returned. */
	ssize_t (*readlink)(void *ctx, const char *path, char *buf, size_t len);
	/* Call `each` with every entry's name but "." and ".."; stops at the
	 * first non-zero return of `each` and returns it. */
	int (*list_dir)(void *ctx, const char *path, int (*each)(void *arg, const char *name),
			void *arg);
	/* RLIMIT_MEMLOCK, and whether the process may exceed it
	 * (CAP_IPC_LOCK, which VFIO's type-1 IOMMU honours). */
	int (*getrlimit)(void *ctx, int resource, struct rlimit *rl);
	bool (*ipc_lock_capable)(void *ctx);
};

/* The host: plain system calls, root "". */
extern const struct vfio_sys vfio_sys_host;

#endif

/* SPDX-License-Identifier: MIT */
/* The decompressed-kernel cache; see kcache.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


#include "boot/decompress.h"
#include "boot/kcache.h"
#include "core/crc.h"

#define KC_MAGIC "VIBEKC1\n"
#define KC_HDR 24 /* magic[8], le64 length, le32 crc32, 4 reserved */

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int entry_path(char *buf, size_t len, const char *dir,
		      const uint8_t key[SHA256_LEN], const char *suffix)
{
	char hex[2 * SHA256_LEN + 1];
	int n;

	for (int i = 0; i < SHA256_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	n = snprintf(buf, len, "%s/%s%s", dir, hex, suffix);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int read_all(int fd, uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EBADMSG;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Header and size checks, then the data and its CRC. */
static int read_entry(int fd, uint8_t **out, size_t *out_len)
{
	uint8_t hdr[KC_HDR], *data;
	struct stat st;
	uint64_t len;
	int err;

	if (fstat(fd, &st) < 0)
		return -errno;
	err = read_all(fd, hdr, sizeof(hdr));
	if (err)
		return err;
	len = get_le(hdr + 8, 8);
	if (memcmp(hdr, KC_MAGIC, 8) || len > BOOT_MAX_DECOMPRESSED ||
	    (uint64_t)st.st_size != KC_HDR + len)
		return -EBADMSG;
	data = malloc(len ? len : 1);
	if (!data)
		return -ENOMEM;
	err = read_all(fd, data, len);
	if (!err && crc32_of(data, len) != (uint32_t)get_le(hdr + 16, 4))
		err = -EBADMSG;
	if (err) {
		free(data);
		return err;
	}
	*out = data;
	*out_len = len;
	return 0;
}

int kcache_lookup(const char *dir, const uint8_t key[SHA256_LEN], uint8_t **out,
		  size_t *out_len)
{
	char path[PATH_MAX];
	int fd, err;

	if (!dir || !key || !out || !out_len)
		return -EINVAL;
	err = entry_path(path, sizeof(path), dir, key, ".vmlinux");
	if (err)
		return err;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = read_entry(fd, out, out_len);
	close(fd);
	return err;
}

/* dir and any missing parents (~/.cache/vibevmm/kernels), 0700. */
static int make_dirs(const char *dir)
{
	char path[PATH_MAX];
	size_t n = strlen(dir);

	if (n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return -errno;
		if (!c)
			return 0;
		*p = c;
	}
}

int kcache_store(const char *dir, const uint8_t key[SHA256_LEN], const uint8_t *data,
		 size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	uint8_t hdr[KC_HDR] = KC_MAGIC;
	int fd, err;

	if (!dir || !key || (!data && len))
		return -EINVAL;
	if ((err = make_dirs(dir)) ||
	    (err = entry_path(path, sizeof(path), dir, key, ".vmlinux")) ||
	    (err = entry_path(tmp, sizeof(tmp), dir, key, ".tmp.XXXXXX")))
		return err;
	put_le(hdr + 8, len, 8);
	put_le(hdr + 16, crc32_of(data, len), 4);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = write_all(fd, hdr, sizeof(hdr));
	if (!err)
		err = write_all(fd, data, len);
	if (close(fd) < 0 && !err)
		err = -errno;
	/* rename replaces any damaged entry in one step */
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

# Benchmark programs and guests, built by bench/run.sh into build/bench/:
#   make -f bench/bench.mk            (from the top of the tree, after `make`)
# exitbench      exit cost through libvibevmm and through a bare KVM_RUN loop
# exits64.bin    the benchmark guest, flat 64-bit (vibevmm --binary, exitbench)
# exits-pvh.elf  the same guest as a PVH ELF (QEMU -kernel)
# iotool         static guest-side load generator (random reads)
# initrd-none-bench.cpio.gz  build/e2e/initrd-none.cpio.gz + /bin/iotool
# arm64 (`make -f bench/bench.mk arm64`, after `make ARCH=arm64
# CROSS_COMPILE=aarch64-linux-gnu-`): for the arm64 test host, in
# build/bench/arm64/: exitbench-arm64 (against build/arm64/lib/libvibevmm.a)
# and bootclock (static)

B := build/bench
E2E ?= build/e2e
CC ?= cc
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS ?= -O2 -g
LDLIBS := -pthread $(shell pkg-config --libs liblz4 libzstd liblzma zlib libseccomp 2>/dev/null || echo -llz4 -lzstd -llzma -lz -lseccomp)

.PHONY: all initrd arm64
all: $(B)/exitbench $(B)/exits64.bin $(B)/exits-pvh.elf $(B)/iotool
initrd: $(B)/initrd-none-bench.cpio.gz

$(B)/exitbench: bench/exitbench.c lib/libvibevmm.a $(wildcard include/*.h)
	@mkdir -p $(B)
	$(CC) -std=gnu11 $(WARN) $(CFLAGS) -D_GNU_SOURCE -Iinclude -o $@ $< lib/libvibevmm.a $(LDLIBS)

$(B)/exits64.bin: bench/guests/exits64.S bench/guests/params.inc
	@mkdir -p $(B)
	as --64 -Ibench/guests -o $(B)/exits64.o $<
	objcopy -O binary -j .text $(B)/exits64.o $@

$(B)/exits-pvh.elf: bench/guests/pvh32.S bench/guests/params.inc bench/guests/pvh.ld
	@mkdir -p $(B)
	as --64 -Ibench/guests -o $(B)/pvh32.o $<
	ld -m elf_x86_64 -nostdlib --build-id=none -z noexecstack -T bench/guests/pvh.ld -o $@ $(B)/pvh32.o

$(B)/iotool: bench/iotool.c
	@mkdir -p $(B)
	$(CC) -std=gnu11 $(WARN) -O2 -D_GNU_SOURCE -static -o $@ $<

# A second cpio archive appended to the guest initramfs (the kernel unpacks
# concatenated archives in order): /bin/iotool.
$(B)/initrd-none-bench.cpio.gz: $(E2E)/initrd-none.cpio.gz $(B)/iotool
	rm -rf $(B)/extra && mkdir -p $(B)/extra/bin
	cp $(B)/iotool $(B)/extra/bin/iotool
	(cd $(B)/extra && find bin/iotool | cpio -o -H newc -R 0:0 --quiet | gzip -9n) > $(B)/extra.cpio.gz
	cat $(E2E)/initrd-none.cpio.gz $(B)/extra.cpio.gz > $@.tmp && mv -f $@.tmp $@

# ---- arm64, cross-built (bench/run.sh --only arm64)
A64 := $(B)/arm64
A64_CROSS ?= aarch64-linux-gnu-
A64_LIB ?= build/arm64/lib/libvibevmm.a
A64_PKG_CONFIG := PKG_CONFIG_LIBDIR=/usr/lib/$(A64_CROSS:%-=%)/pkgconfig:/usr/share/pkgconfig pkg-config
# libfdt-dev has no :arm64 beside the amd64 one: libfdt1:arm64's library by name
A64_LDLIBS = -pthread $(shell $(A64_PKG_CONFIG) --libs liblz4 libzstd liblzma zlib libseccomp 2>/dev/null || echo -llz4 -lzstd -llzma -lz -lseccomp) -l:libfdt.so.1
arm64: $(A64)/exitbench-arm64 $(A64)/bootclock

$(A64)/exitbench-arm64: bench/exitbench-arm64.c $(A64_LIB) $(wildcard include/*.h) arch/arm64/layout.h
	@mkdir -p $(A64)
	$(A64_CROSS)gcc -std=gnu11 $(WARN) $(CFLAGS) -D_GNU_SOURCE -Iinclude -I. -o $@ $< $(A64_LIB) $(A64_LDLIBS)

$(A64)/bootclock: bench/bootclock.c
	@mkdir -p $(A64)
	$(A64_CROSS)gcc -std=gnu11 $(WARN) $(CFLAGS) -D_GNU_SOURCE -static -o $@ $<

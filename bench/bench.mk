# Benchmark programs and guests, built by bench/run.sh into build/bench/:
#   make -f bench/bench.mk            (from the top of the tree, after `make`)
# exitbench      exit cost through libvibevmm and through a bare KVM_RUN loop
# exits64.bin    the benchmark guest, flat 64-bit (vibevmm --binary, exitbench)
# exits-pvh.elf  the same guest as a PVH ELF (QEMU -kernel)
# initrd-bench.cpio  (target `initrd`, BENCH_TOOLS=the archive that
#                tests/fixtures/make-bench-tools.sh prints): the cloud guest's
#                initramfs + fio, iperf3 and their libraries, for disk and net
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
all: $(B)/exitbench $(B)/exits64.bin $(B)/exits-pvh.elf
initrd: $(B)/initrd-bench.cpio

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

# Two archives back to back (the kernel unpacks concatenated archives in
# order, each with its own compression): the gzip'd test initramfs, then the
# zstd tools archive.
BENCH_TOOLS ?=
$(B)/initrd-bench.cpio: $(E2E)/initrd-cloud.cpio.gz $(BENCH_TOOLS)
	@test -n "$(BENCH_TOOLS)" || { echo "bench.mk: set BENCH_TOOLS (tests/fixtures/make-bench-tools.sh prints it)" >&2; exit 1; }
	@mkdir -p $(B)
	cat $^ > $@.tmp && mv -f $@.tmp $@

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

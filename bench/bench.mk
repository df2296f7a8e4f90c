# Benchmark programs and guests, built by bench/run.sh into build/bench/:
#   make -f bench/bench.mk            (from the top of the tree, after `make`)
# exitbench      exit cost through libvibevmm and through a bare KVM_RUN loop
# exits64.bin    the benchmark guest, flat 64-bit (vibevmm --binary, exitbench)
# exits-pvh.elf  the same guest as a PVH ELF (QEMU -kernel)
# iotool         static guest-side load generator (random reads)
# initrd-none-bench.cpio.gz  build/e2e/initrd-none.cpio.gz + /bin/iotool

B := build/bench
E2E ?= build/e2e
CC ?= cc
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS ?= -O2 -g
LDLIBS := -pthread $(shell pkg-config --libs liblz4 libzstd liblzma zlib libseccomp 2>/dev/null || echo -llz4 -lzstd -llzma -lz -lseccomp)

.PHONY: all initrd
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

# vimport: build, test, demo, bench.
#
#   make          build/vimport
#   make test     unit tests (plain and ASan+UBSan), clang warning build, e2e tests,
#                 the CDI contract suite, and every fuzz target for FUZZ_SECONDS
#   make cdi      the image run by podman as CDI's importer pod runs it (tests/cdi)
#   make demo     a real import on loopback, with every verification stage
#   make bench    benchmarks against the tools vimport replaces
#   make fuzz     every libFuzzer target for FUZZ_SECONDS each
#   make static   build/vimport-static, fully static (hack/build-static.sh)
#   make image    the FROM scratch image localhost/vimport with podman
#   make install  build/vimport, CDI's program names as links to it, and the man pages
#                 under $(DESTDIR)$(PREFIX) (PREFIX=/usr/local)
#
# Sources are found by convention, so a new stage needs no Makefile edit:
#   pkg/<stage>/*.c          the library (build/libvimport.a)
#   cmd/vimport/*.c          the binary
#   tests/unit/test_*.c      one Criterion binary each
#   tests/fuzz/fuzz_*.c      one libFuzzer binary each
#   tests/e2e/test_*.sh      run by tests/e2e/run.sh

CC        ?= gcc
BUILD     ?= build
PKGS      := libcurl libnbd libssl libcrypto yaml-0.1 zlib libdeflate liblzma libzstd libisal
WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS    ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(WARN) $(CFLAGS) \
             -Ipkg $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS       = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
SAN       := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
# 20 targets, FUZZ_JOBS at once: 30 s each keeps `make test` within CI's hour on two
# CPUs; `make fuzz FUZZ_SECONDS=600` for a longer run.
FUZZ_SECONDS ?= 30

PKG_SRC   := $(sort $(wildcard pkg/*/*.c))
CMD_SRC   := $(sort $(wildcard cmd/vimport/*.c))
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
HDRS      := $(wildcard pkg/*/*.h cmd/vimport/*.h tests/unit/*.h tests/fuzz/*.h)

PKG_OBJ      := $(PKG_SRC:%.c=$(BUILD)/obj/%.o)
PKG_OBJ_SAN  := $(PKG_SRC:%.c=$(BUILD)/asan/%.o)
PKG_OBJ_FUZZ := $(PKG_SRC:%.c=$(BUILD)/fuzz-obj/%.o)
CMD_OBJ      := $(CMD_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN     := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_BIN_SAN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests-asan/%)
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all deps test unit unit-asan e2e cdi clang-check demo bench fuzz clean
.DELETE_ON_ERROR:

all: $(BUILD)/vimport

deps:
	@hack/install-deps.sh

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/asan/%.o: %.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN) -c $< -o $@

# The library once for all fuzz targets: instrumented for coverage (fuzzer-no-link) and
# the sanitizers, so each target only compiles its own file and links.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(WARN) -g -O1 -Ipkg \
               -fsanitize=fuzzer-no-link,address,undefined
$(BUILD)/fuzz-obj/%.o: %.c $(HDRS)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -c $< -o $@

$(BUILD)/libvimport-fuzz.a: $(PKG_OBJ_FUZZ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libvimport.a: $(PKG_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libvimport-asan.a: $(PKG_OBJ_SAN)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/vimport: $(CMD_OBJ) $(BUILD)/libvimport.a
	$(CC) $(ALL_CFLAGS) -o $@ $(CMD_OBJ) $(BUILD)/libvimport.a $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libvimport.a $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libvimport.a $(LIBS) -lcriterion

$(BUILD)/tests-asan/%: tests/unit/%.c $(BUILD)/libvimport-asan.a $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN) -Itests/unit -o $@ $< $(BUILD)/libvimport-asan.a $(LIBS) -lcriterion

unit: deps $(UNIT_BIN)
	@tests/unit/run.sh $(UNIT_BIN)

unit-asan: deps $(UNIT_BIN_SAN)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  tests/unit/run.sh $(UNIT_BIN_SAN)

# The same sources must build without warnings under clang too.
clang-check: deps
	@$(MAKE) --no-print-directory CC=clang BUILD=$(BUILD)/clang $(BUILD)/clang/vimport

e2e: deps $(BUILD)/vimport
	@tests/e2e/run.sh

# The FROM scratch image as CDI's importer pod runs it (tests/cdi/README.md); it builds
# build/vimport-static and the image itself. Needs root, podman and loop devices.
cdi: deps
	@tests/cdi/run.sh

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory unit-asan
	@$(MAKE) --no-print-directory clang-check
	@$(MAKE) --no-print-directory e2e
	@$(MAKE) --no-print-directory cdi
	@$(MAKE) --no-print-directory fuzz

demo: deps $(BUILD)/vimport
	@hack/demo.sh

bench: deps $(BUILD)/vimport
	@hack/bench.sh

$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/libvimport-fuzz.a $(HDRS)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/libvimport-fuzz.a $(LIBS)

fuzz: deps $(FUZZ_BIN)
	@tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

# Fully static build/vimport-static (hack/build-static.sh; the libraries Debian has no
# usable .a of are built once into $(BUILD)/static-deps) and its FROM scratch image.
.PHONY: static image
static: deps
	@hack/build-static.sh $(BUILD)

image: static
	@hack/build-static-image.sh $(BUILD)

# The binary once; the names CDI starts it by (cmd/vimport/main.c) as links beside it;
# the man pages, one roff source each (docs/man).
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man
CDI_NAMES := cdi-image-size-detection cdi-containerimage-server cdi-source-update-poller
MAN_PAGES := $(sort $(wildcard docs/man/*.1))
.PHONY: install
install: $(BUILD)/vimport
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(BUILD)/vimport $(DESTDIR)$(BINDIR)/vimport
	for n in $(CDI_NAMES); do ln -sf vimport $(DESTDIR)$(BINDIR)/$$n; done
	install -m 0644 $(MAN_PAGES) $(DESTDIR)$(MANDIR)/man1/

clean:
	rm -rf $(BUILD)

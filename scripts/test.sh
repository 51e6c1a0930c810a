#!/usr/bin/env bash
# Runs Rivet's whole test suite. On Debian as root it first installs what the suite
# needs (QEMU 10 from bookworm-backports as the differential oracle, the RISC-V cross
# toolchain for bare-metal test programs, dtc); otherwise it says what is missing and
# the tests that need it say loudly that they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v qemu-system-riscv64 >/dev/null || need_pkgs+=(qemu-system-riscv)
command -v riscv64-unknown-elf-gcc >/dev/null || need_pkgs+=(gcc-riscv64-unknown-elf binutils-riscv64-unknown-elf)
command -v dtc >/dev/null || need_pkgs+=(device-tree-compiler)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    backports=()
    if [ "$codename" = bookworm ]; then
      # bookworm's own QEMU (7.2) lacks recent extensions: take 10.x from backports,
      # from the same mirror the existing apt sources use.
      if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        mirror=$(grep -rhs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)
        [ -n "$mirror" ] || mirror=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -n1 || true)
        if [ -n "$mirror" ]; then
          printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$mirror" > /etc/apt/sources.list.d/bookworm-backports.sources
        fi
      fi
      backports=(-t bookworm-backports)
    fi
    echo "test.sh: installing ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${backports[@]}" qemu-system-riscv >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-riscv64-unknown-elf \
      binutils-riscv64-unknown-elf device-tree-compiler >/dev/null
  else
    echo "test.sh: missing ${need_pkgs[*]} (install them as root with apt-get); tests that need them will be skipped" >&2
  fi
fi

cargo build --release --workspace --bins
# The fuzz targets (a workspace of their own, run with cargo-fuzz) are built so they
# cannot rot; fuzzing them is not part of the suite.
cargo build --manifest-path fuzz/Cargo.toml --bins
cargo test --release --workspace --no-fail-fast

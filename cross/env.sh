# Sourced by the cross/ scripts: `cross_env ARCH` sets the Rust target, the Debian triplet and
# the cross-compilation environment for one Debian architecture (amd64, arm64, armhf).
#
# Cross builds use Debian's cross gcc (for the C/C++ in openh264, libopus and ring) and the
# target's multiarch -dev packages (for pkg-config), never a container.

cross_env() {
  DEB_ARCH=$1
  case $DEB_ARCH in
    amd64) RUST_TARGET=x86_64-unknown-linux-gnu TRIPLET=x86_64-linux-gnu QEMU= ;;
    arm64) RUST_TARGET=aarch64-unknown-linux-gnu TRIPLET=aarch64-linux-gnu QEMU=qemu-aarch64 ;;
    armhf) RUST_TARGET=armv7-unknown-linux-gnueabihf TRIPLET=arm-linux-gnueabihf QEMU=qemu-arm ;;
    *) echo "cross: unknown architecture '$DEB_ARCH' (amd64, arm64 or armhf)" >&2; return 2 ;;
  esac
  export DEB_ARCH RUST_TARGET TRIPLET QEMU
  [[ $DEB_ARCH == amd64 ]] && return 0

  local t=${RUST_TARGET//-/_} T
  T=$(tr '[:lower:]' '[:upper:]' <<<"$t")
  export "CARGO_TARGET_${T}_LINKER=$TRIPLET-gcc"
  export "CC_$t=$TRIPLET-gcc" "CXX_$t=$TRIPLET-g++" "AR_$t=$TRIPLET-ar"
  export PKG_CONFIG_ALLOW_CROSS=1
  export "PKG_CONFIG_PATH_$t=/usr/lib/$TRIPLET/pkgconfig:/usr/share/pkgconfig"
  export "BINDGEN_EXTRA_CLANG_ARGS_$t=--sysroot=/usr/$TRIPLET"
  if [[ $DEB_ARCH == armhf ]]; then
    # Bundled libopus picks its ARM code paths from these; Debian armhf's defaults are ARMv7 + VFPv3-D16.
    export "CFLAGS_$t=-march=armv7-a -mfpu=neon-vfpv4 -mfloat-abi=hard"
    export "CXXFLAGS_$t=-march=armv7-a -mfpu=neon-vfpv4 -mfloat-abi=hard"
  fi
}

# Where cargo puts this target's release build.
cross_out_dir() {
  local root=${CARGO_TARGET_DIR:-$REPO/target}
  echo "$root/$RUST_TARGET/release"
}

# Runs a program built for the target: natively on amd64, under qemu-user otherwise. Never with
# -L /usr/<triplet>: the binaries find the multiarch loader and libc in /lib by themselves, and
# with -L the cross ld.so meets the multiarch libc and threads crash or hang.
cross_run() {
  if [[ -n $QEMU ]]; then "$QEMU" "$@"; else "$@"; fi
}

#!/usr/bin/env bash
# Runs one command inside a throwaway Linux VM that has real virtual-device drivers loaded:
# vivid (cameras), snd-aloop (an ALSA loopback sound card) and dummy (a network interface with
# 192.0.2.10/24, a documentation address nothing can route to). See tests/vm/README.md.
#
#   tests/vm/run.sh [--timeout SECONDS] [--modules "vivid snd-aloop dummy"] [--systemd]
#                   [--tap IFNAME]... -- COMMAND [ARG...]
#
# --tap gives the guest a virtio network card wired to a new tap interface IFNAME in the caller's
# network namespace, with the MAC address 52:54:00:00:00:0N for the Nth --tap (1-based): the
# guest can then be a link between two of the caller's namespaces (tests/common/netem.rs).
# --systemd boots the host's real systemd as PID 1 instead (over a writable tmpfs overlay of the
# read-only host root) and runs COMMAND as a oneshot service once the system is up.
#
# The guest boots Debian's linux-image-amd64 kernel under TCG (2 CPUs, 2 GiB) with a tiny
# busybox initramfs, mounts this machine's root file system read-only over 9p, puts tmpfs on
# /tmp and /run, chroots into it and runs COMMAND as root with a minimal environment plus any
# CAMRTC_* variables of the caller. COMMAND's output comes back on the serial console (this
# script's stdout); the script exits with COMMAND's exit status, or 124 if the VM ran out of
# time, or 125 if the VM itself failed. Files the command needs must not live under /tmp or
# /run, which the guest replaces.
set -euo pipefail

timeout=300
modules="vivid snd-aloop dummy"
systemd=0
nics=(-nic none)
taps=0
while (($#)); do
  case $1 in
    --systemd) systemd=1; shift ;;
    --tap)
      taps=$((taps + 1))
      ((taps <= 9)) || { echo "vm: at most 9 --tap" >&2; exit 2; }
      nics+=(-netdev "tap,id=tap$taps,ifname=$2,script=no,downscript=no"
        -device "virtio-net-pci,netdev=tap$taps,mac=52:54:00:00:00:0$taps,romfile=")
      shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --modules) modules=$2; shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,23s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "vm: unknown argument: $1" >&2; exit 2 ;;
  esac
done
(($#)) || { echo "vm: no command given (see --help)" >&2; exit 2; }

fail() { echo "vm: $*" >&2; exit 125; }

# The newest installed kernel that has vivid; its modules are what the guest loads.
kernel=
for image in $(ls -v /boot/vmlinuz-* 2>/dev/null | tac); do
  release=${image#/boot/vmlinuz-}
  if compgen -G "/lib/modules/$release/kernel/drivers/media/test-drivers/vivid/vivid.ko*" >/dev/null; then
    kernel=$image
    break
  fi
done
[[ -n $kernel ]] || fail "no /boot/vmlinuz-* with vivid modules; run scripts/install-deps.sh --test"
[[ -r $kernel ]] || fail "cannot read $kernel (run as root)"
for tool in qemu-system-x86_64 cpio; do
  command -v "$tool" >/dev/null || fail "$tool missing; run scripts/install-deps.sh --test"
done
busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
  ldd "$busybox" 2>&1 | grep -q 'not a dynamic' || fail "$busybox is not static; install busybox-static"

# Everything the guest reads from the host (job script, output of builds) must sit outside the
# guest's own tmpfs mounts.
state=${CAMRTC_VM_DIR:-/var/tmp/camrtc-vm}
mkdir -p "$state"
job=$(mktemp -d "$state/job.XXXXXX")
trap 'rm -rf "$job"' EXIT

# The initramfs depends only on the kernel release and busybox: build it once per pair.
initrd=$state/initrd-$release.cpio.gz
if [[ ! -s $initrd || $initrd -ot $busybox || $initrd -ot "${BASH_SOURCE[0]}" ]]; then
  root=$job/initramfs
  mkdir -p "$root/bin" "$root/modules" "$root/newroot"
  cp "$busybox" "$root/bin/busybox"
  for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs \
    fscache 9pnet 9pnet_virtio 9p overlay; do
    path=$(find "/lib/modules/$release/kernel" -name "$m.ko*" -print -quit)
    [[ -n $path ]] || continue # built into this kernel
    case $path in
      *.ko.xz) xz -dc "$path" >"$root/modules/$m.ko" ;;
      *.ko.zst) zstd -qdc "$path" >"$root/modules/$m.ko" ;;
      *.ko.gz) gzip -dc "$path" >"$root/modules/$m.ko" ;;
      *) cp "$path" "$root/modules/$m.ko" ;;
    esac
    echo "$m" >>"$root/modules/order"
  done
  cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do insmod "/modules/$m.ko" || echo "vm: insmod $m failed"; done
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /newroot; then
  echo "vm: cannot mount the host root"; echo "CAMRTC_VM_EXIT=125"; poweroff -f
fi
job=$(sed -n 's/.*camrtc\.job=\([^ ]*\).*/\1/p' /proc/cmdline)
if grep -q 'camrtc\.systemd=1' /proc/cmdline; then
  # --systemd: the host's real systemd as PID 1. The read-only host root becomes the lower layer
  # of an overlay whose tmpfs upper layer takes the test's users, units and state.
  mkdir -p /lower /ovl
  mount --move /newroot /lower
  mount -t tmpfs tmpfs /ovl
  mkdir -p /ovl/upper /ovl/work
  mount -t overlay overlay -o lowerdir=/lower,upperdir=/ovl/upper,workdir=/ovl/work /newroot
  # A container marker would make systemd behave as a container (and ignore the kernel command
  # line); an empty machine id makes it generate one for this boot.
  rm -f /newroot/.dockerenv /newroot/run/.containerenv
  : >/newroot/etc/machine-id
  # The markers go straight to the console (the command's own output takes the journal's way
  # there, a little later: hence the pause before powering off).
  cat >/newroot/etc/camrtc-vm-job.sh <<JOB
echo "CAMRTC_VM_BOOTED uptime=\$(cut -d' ' -f1 /proc/uptime)" >/dev/console
/bin/sh $job/guest.sh
status=\$?
sleep 2
echo "CAMRTC_VM_EXIT=\$status" >/dev/console
systemctl poweroff --force --force
JOB
  cat >/newroot/etc/systemd/system/camrtc-vm-job.service <<UNIT
[Unit]
Description=the tests/vm/run.sh command
After=systemd-udevd.service systemd-journald.service
[Service]
Type=oneshot
ExecStart=/bin/sh /etc/camrtc-vm-job.sh
StandardOutput=journal+console
StandardError=journal+console
FailureAction=poweroff-force
UNIT
  for fs in proc sys dev; do mount --move "/$fs" "/newroot/$fs"; done
  exec switch_root /newroot /lib/systemd/systemd
fi
for fs in proc:proc sysfs:sys devtmpfs:dev tmpfs:tmp tmpfs:run; do
  mount -t "${fs%%:*}" "${fs%%:*}" "/newroot/${fs#*:}"
done
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
echo "CAMRTC_VM_BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"
chroot /newroot /bin/sh "$job/guest.sh"
echo "CAMRTC_VM_EXIT=$?"
poweroff -f
INIT
  chmod +x "$root/init"
  # Built under a private name and renamed, so concurrent runs never read a half-written file.
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd.$$.tmp"
  mv "$initrd.$$.tmp" "$initrd"
  rm -rf "$root"
fi

# The command, with its environment, as the guest will run it after loading the drivers.
{
  echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp LANG=C.UTF-8'
  env | grep -E '^(CAMRTC|RUST)_[A-Za-z0-9_]*=' | while IFS='=' read -r name value; do
    printf 'export %s=%q\n' "$name" "$value"
  done
  for m in $modules; do echo "modprobe $m || echo 'vm: modprobe $m failed'"; done
  # Loopback candidates are skipped by WebRTC stacks; give the guest one routable-looking
  # address that cannot leave it.
  echo 'ip link set lo up'
  if [[ " $modules " == *" dummy "* ]]; then
    echo 'ip link show dummy0 >/dev/null 2>&1 || ip link add dummy0 type dummy'
    echo 'ip addr add 192.0.2.10/24 dev dummy0 && ip link set dummy0 up'
    # A default route (into the dummy, which drops everything) lets multicast group joins such
    # as mDNS succeed; without any route they fail with ENODEV.
    echo 'ip route add default dev dummy0'
  fi
  printf 'cd %q\n' "$PWD"
  printf '%q ' "$@"
  echo
} >"$job/guest.sh"

boot_args=
((systemd)) && boot_args="camrtc.systemd=1 systemd.unit=camrtc-vm-job.service systemd.show_status=false"

# Console output goes through a file so the marker lines can be read after qemu exits, and out
# line by line, so a caller can act on a line while the guest runs (tests/common/netem.rs).
console=$job/console.log
set +e
timeout --foreground -k 5 "$timeout" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -smp 2 -m 2G \
  -kernel "$kernel" -initrd "$initrd" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 camrtc.job=$job $boot_args" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -nographic -no-reboot "${nics[@]}" -monitor none -serial stdio </dev/null |
  tee "$console" | stdbuf -oL tr -d '\r'
status=${PIPESTATUS[0]}
set -e
if ((status == 124 || status == 137)); then
  echo "vm: timed out after ${timeout}s" >&2
  exit 124
fi
exit_line=$(tr -d '\r' <"$console" | grep -a '^CAMRTC_VM_EXIT=' | tail -1 || true)
[[ -n $exit_line ]] || fail "the guest ended without reporting an exit status (qemu status $status)"
exit "${exit_line#CAMRTC_VM_EXIT=}"

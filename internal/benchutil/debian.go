package benchutil

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/nodeinit/nodeinit/image/debroot"
)

// StockRecipe is the Debian root whose initramfs-tools makes the reference initrd:
// minbase with the cloud kernel, initramfs-tools and zstd (its default compressor,
// which a normal install pulls in as a recommendation), and none of the packages
// that add hooks (lvm2, mdadm, cryptsetup-initramfs).
var StockRecipe = debroot.Recipe{Packages: []string{"initramfs-tools", "zstd"}}

// StockInitrd returns Debian's own initrd for kernel kver as a stock system makes it:
// mkinitramfs with initramfs-tools' defaults (MODULES=most, COMPRESS=zstd, no extra
// hooks), run inside the StockRecipe root from the cache, where it is kept next to
// the root. The build machine's /boot/initrd.img is not used: its initramfs-tools
// carries the hooks of whatever the machine has installed (here lvm2 and mdadm),
// which add about 4 MB and 3.5 s of boot.
func StockInitrd(ctx context.Context, cacheDir, kver string, logw io.Writer) (string, error) {
	root, err := debroot.Ensure(ctx, StockRecipe, cacheDir, logw)
	if err != nil {
		return "", fmt.Errorf("Debian root for the stock initrd: %w", err)
	}
	if root.KernelVersion != kver {
		return "", fmt.Errorf("the Debian root has kernel %s, the benchmark boots %s: run apt-get update and make fetch, so both come from the same archive",
			root.KernelVersion, kver)
	}
	out := filepath.Join(filepath.Dir(root.Dir), "initrd.img-"+kver)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	inRoot := "/tmp/stock-initrd.img-" + kver
	cmd := exec.CommandContext(ctx, "chroot", root.Dir, "mkinitramfs", "-o", inRoot, kver)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chroot %s mkinitramfs -o %s %s: %w: %s", root.Dir, inRoot, kver, err, strings.TrimSpace(string(b)))
	}
	if err := os.Rename(filepath.Join(root.Dir, inRoot), out); err != nil {
		return "", err
	}
	return out, nil
}

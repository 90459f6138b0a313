package early

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// KernelPower asks the kernel to reboot, power off or halt, after syncing filesystems.
type KernelPower struct{}

// Reboot restarts the machine.
func (KernelPower) Reboot() error { return reboot(unix.LINUX_REBOOT_CMD_RESTART, "reboot") }

// PowerOff turns the machine off.
func (KernelPower) PowerOff() error { return reboot(unix.LINUX_REBOOT_CMD_POWER_OFF, "power off") }

// Halt stops the CPUs and leaves the consoles as they are.
func (KernelPower) Halt() error { return reboot(unix.LINUX_REBOOT_CMD_HALT, "halt") }

func reboot(cmd int, what string) error {
	unix.Sync()
	if err := unix.Reboot(cmd); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

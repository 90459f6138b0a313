//go:build !linux

package image

import "errors"

type noMounter struct{}

func defaultMounter() Mounter { return noMounter{} }

func (noMounter) MountReadOnly(device, target, fstype string) error {
	return errors.New("mounting is only supported on Linux")
}

func (noMounter) Unmount(target string) error {
	return errors.New("mounting is only supported on Linux")
}

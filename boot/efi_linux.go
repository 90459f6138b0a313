package boot

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/u-root/u-root/pkg/efivarfs"
)

// efiGlobalGUID is the EFI global variable namespace (Boot####, BootOrder).
var efiGlobalGUID = uuid.MustParse("8be4df61-93ca-11d2-aa0d-00e098032b8c")

// efivarfsStore is EFIVars on Linux efivarfs through u-root's efivarfs
// package, which also clears the immutable inode flag (FS_IOC_SETFLAGS)
// before writing or removing a variable.
type efivarfsStore struct{ fs *efivarfs.EFIVarFS }

// OpenEFIVars opens efivarfs at /sys/firmware/efi/efivars. It fails when the
// machine did not boot through UEFI or efivarfs is not mounted.
func OpenEFIVars() (EFIVars, error) {
	return OpenEFIVarsAt(efivarfs.DefaultVarFS)
}

// OpenEFIVarsAt opens efivarfs mounted at dir.
func OpenEFIVarsAt(dir string) (EFIVars, error) {
	fs, err := efivarfs.NewPath(dir)
	if err != nil {
		return nil, fmt.Errorf("open efivarfs at %s: %w (hint: boot in UEFI mode and mount efivarfs)", dir, err)
	}
	return efivarfsStore{fs}, nil
}

// desc maps a name to its variable: "Name-<guid>" (efivarfs's own file
// naming) is in that vendor namespace, a bare name in the global one.
func (s efivarfsStore) desc(name string) efivarfs.VariableDescriptor {
	if i := len(name) - 37; i > 0 && name[i] == '-' {
		if g, err := uuid.Parse(name[i+1:]); err == nil {
			return efivarfs.VariableDescriptor{Name: name[:i], GUID: g}
		}
	}
	return efivarfs.VariableDescriptor{Name: name, GUID: efiGlobalGUID}
}

func (s efivarfsStore) Get(name string) (uint32, []byte, error) {
	a, d, err := s.fs.Get(s.desc(name))
	return uint32(a), d, err
}

func (s efivarfsStore) Set(name string, attrs uint32, data []byte) error {
	return s.fs.Set(s.desc(name), efivarfs.VariableAttributes(attrs), data)
}

func (s efivarfsStore) Remove(name string) error { return s.fs.Remove(s.desc(name)) }

func (s efivarfsStore) List() ([]string, error) {
	all, err := s.fs.List()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, d := range all {
		if d.GUID == efiGlobalGUID {
			names = append(names, d.Name)
		}
	}
	return names, nil
}

package boot

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// nodeinitVendorGUID is nodeinit's own EFI variable namespace.
const nodeinitVendorGUID = "537fb13e-46e3-4fe4-bb91-dfc1adc95784"

// UninstallVar is the EFI variable an uninstall leaves behind: the ledger
// goes with the disks it wipes, so the machine's firmware keeps the record of
// when they were erased, and how.
const UninstallVar = "NodeinitUninstall-" + nodeinitVendorGUID

// maxUninstallRecord bounds the variable: firmware stores are small.
const maxUninstallRecord = 2048

// UninstallRecord says when an uninstall ran and how it erased each disk.
type UninstallRecord struct {
	Time  time.Time    `json:"time"`
	Disks []ErasedDisk `json:"disks"`
}

// ErasedDisk is one disk an uninstall wiped.
type ErasedDisk struct {
	Disk string `json:"disk"` // its path and serial when known, e.g. /dev/sda (S123)
	EraseRecord
}

// WriteUninstallRecord stores r in UninstallVar, replacing an older one. A
// record too large for the firmware is refused before anything is written.
func WriteUninstallRecord(v EFIVars, r UninstallRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if len(b) > maxUninstallRecord {
		return fmt.Errorf("uninstall record of %d disks is %d bytes, more than the %d an EFI variable is given", len(r.Disks), len(b), maxUninstallRecord)
	}
	if err := v.Set(UninstallVar, bootVarAttributes, b); err != nil {
		return fmt.Errorf("write EFI %s: %w", UninstallVar, err)
	}
	return nil
}

// ReadUninstallRecord reads UninstallVar; nil without error when the machine
// has none.
func ReadUninstallRecord(v EFIVars) (*UninstallRecord, error) {
	_, b, err := v.Get(UninstallVar)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read EFI %s: %w", UninstallVar, err)
	}
	if len(b) > maxUninstallRecord {
		return nil, fmt.Errorf("EFI %s holds %d bytes, more than nodeinit writes", UninstallVar, len(b))
	}
	var r UninstallRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("EFI %s: %w", UninstallVar, err)
	}
	return &r, nil
}

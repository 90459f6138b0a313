package stages

import (
	"io/fs"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/disk"
)

// takeProbedESP returns the probed ESP when it is d's, for one use; any
// other use of the job's ESP closes it first.
func (j *Job) takeProbedESP(d *disk.Disk) *ProbedESP {
	pe := j.ProbedESP
	j.ProbedESP = nil
	if pe != nil && pe.Disk != d.Name {
		pe.Close()
		return nil
	}
	return pe
}

// withProbedESP runs fn as withESP does, on the ESP at dev, reading through
// the probe's read-only FAT until fn changes something: the first change
// opens dev for writing and parses the FAT again, from the disk that nothing
// has written since the probe, and from then on fn reads and writes there. A
// plain boot of the same slot changes nothing and parses the FAT once.
func (j *Job) withProbedESP(pe *ProbedESP, dev string, sectorSize int, fn func(esp boot.FS) error) error {
	defer pe.Close()
	var b device.Block
	esp := &espUntilWritten{ro: pe.FS, open: func() (boot.FS, error) {
		var err error
		if b, err = j.Dev.OpenBlock(dev, sectorSize); err != nil {
			return nil, err
		}
		return boot.OpenFAT(b)
	}}
	err := fn(esp)
	if b == nil {
		return err // nothing changed: nothing to flush
	}
	return flushAndClose(b, err)
}

// espUntilWritten is a boot.FS that reads from ro until the first change,
// which it makes, with every later call, through the FS that open returns.
type espUntilWritten struct {
	ro, rw boot.FS
	open   func() (boot.FS, error)
	err    error // open's error, returned by every later change
}

func (e *espUntilWritten) reader() boot.FS {
	if e.rw != nil {
		return e.rw
	}
	return e.ro
}

// write makes a change through the writable FS, opening it on the first.
func (e *espUntilWritten) write(change func(w boot.FS) error) error {
	if e.rw == nil && e.err == nil {
		e.rw, e.err = e.open()
	}
	if e.err != nil {
		return e.err
	}
	return change(e.rw)
}

// ReadFile reads name.
func (e *espUntilWritten) ReadFile(name string) ([]byte, error) { return e.reader().ReadFile(name) }

// ReadDir lists name.
func (e *espUntilWritten) ReadDir(name string) ([]fs.DirEntry, error) {
	return e.reader().ReadDir(name)
}

// Stat describes name.
func (e *espUntilWritten) Stat(name string) (fs.FileInfo, error) { return e.reader().Stat(name) }

// WriteFile replaces name with data.
func (e *espUntilWritten) WriteFile(name string, data []byte) error {
	return e.write(func(w boot.FS) error { return w.WriteFile(name, data) })
}

// Remove removes name.
func (e *espUntilWritten) Remove(name string) error {
	return e.write(func(w boot.FS) error { return w.Remove(name) })
}

// Rename renames oldname to newname.
func (e *espUntilWritten) Rename(oldname, newname string) error {
	return e.write(func(w boot.FS) error { return w.Rename(oldname, newname) })
}

// MkdirAll makes name and its parents.
func (e *espUntilWritten) MkdirAll(name string) error {
	return e.write(func(w boot.FS) error { return w.MkdirAll(name) })
}

package early

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// maxLogBytes bounds the copy of the output kept for SaveLog; the oldest half is dropped.
const maxLogBytes = 8 << 20

// Output writes to every console and to /dev/kmsg, and keeps a copy for SaveLog. A console
// that fails a write is dropped so that one broken console cannot silence the others. A
// console can be held (Hold) while a screen is drawn on it: it gets nothing until it is
// released, and kmsg, the saved log and the other consoles keep every line.
type Output struct {
	mu sync.Mutex
	// Verbose sends Detail lines to the consoles too (nodeinit.debug).
	Verbose  bool
	consoles []console
	kmsg     io.Writer
	pending  []byte // a partial line not yet sent to kmsg
	copy     bytes.Buffer
}

// console is one console Output writes to, with its name as console= gives it.
type console struct {
	name string
	w    io.Writer
	held int // how many Holds are not released yet
}

// NewOutput writes to consoles and, one record per line, to kmsg (nil for none).
func NewOutput(kmsg io.Writer, consoles ...io.Writer) *Output {
	o := &Output{kmsg: kmsg}
	for _, w := range consoles {
		o.consoles = append(o.consoles, console{w: w})
	}
	return o
}

// NewNamedOutput is NewOutput with each console's name as console= gives it (ttyS0, tty0),
// so that Hold can find it. names and consoles pair up by index.
func NewNamedOutput(kmsg io.Writer, names []string, consoles []io.Writer) *Output {
	o := NewOutput(kmsg, consoles...)
	for i := range o.consoles {
		if i < len(names) {
			o.consoles[i].name = names[i]
		}
	}
	return o
}

// Hold stops writing to the console name until release is called: the installer screen
// draws there, and a line of text would tear its frame. Everything written meanwhile still
// reaches kmsg, the saved log and the other consoles. A name Output does not write to holds
// nothing. release may be called more than once.
func (o *Output) Hold(name string) (release func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	found := false
	for i := range o.consoles {
		if o.consoles[i].name == name {
			o.consoles[i].held++
			found = true
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if !found {
				return
			}
			o.mu.Lock()
			defer o.mu.Unlock()
			for i := range o.consoles {
				if o.consoles[i].name == name && o.consoles[i].held > 0 {
					o.consoles[i].held--
				}
			}
		})
	}
}

// OpenOutput opens /dev/<name> under devDir for each console name and devDir/kmsg. Consoles
// that cannot be opened are skipped; the returned error lists them (Output is still usable).
func OpenOutput(devDir string, names []string) (*Output, error) {
	var consoles []io.Writer
	var opened, bad []string
	for _, n := range names {
		f, err := os.OpenFile(filepath.Join(devDir, n), os.O_WRONLY|os.O_APPEND|noctty, 0)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", n, err))
			continue
		}
		consoles = append(consoles, f)
		opened = append(opened, n)
	}
	var kmsg io.Writer
	if f, err := os.OpenFile(filepath.Join(devDir, "kmsg"), os.O_WRONLY, 0); err == nil {
		kmsg = f
	} else {
		bad = append(bad, fmt.Sprintf("kmsg: %v", err))
	}
	o := NewNamedOutput(kmsg, opened, consoles)
	if len(bad) > 0 {
		return o, fmt.Errorf("open consoles: %v", bad)
	}
	return o, nil
}

// Consoles returns how many consoles are still written to.
func (o *Output) Consoles() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.consoles)
}

// Write sends p to every console and to kmsg. It never fails: output must not stop the boot.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	kept := o.consoles[:0]
	for _, c := range o.consoles {
		if c.held > 0 {
			kept = append(kept, c)
			continue
		}
		if _, err := c.w.Write(p); err == nil {
			kept = append(kept, c)
		}
	}
	o.consoles = kept
	o.keep(p)
	o.toKmsg(p)
	return len(p), nil
}

// Detailf writes a line of detail (each early mount, say): to kmsg and the saved log always,
// to the consoles only when Verbose.
func (o *Output) Detailf(format string, args ...any) {
	line := []byte(fmt.Sprintf(format, args...) + "\n")
	if o.Verbose {
		o.Write(line)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.keep(line)
	o.toKmsg(line)
}

// Detail is an io.Writer for Detailf: each Write is detail. /init points the
// standard log package at it, so that what libraries log (u-root's switch_root
// steps, say) is in kmsg and the saved log, and on the consoles only with
// nodeinit.debug.
func (o *Output) Detail() io.Writer { return detailWriter{o} }

type detailWriter struct{ o *Output }

func (d detailWriter) Write(p []byte) (int, error) {
	d.o.Detailf("%s", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (o *Output) keep(p []byte) {
	if o.copy.Len()+len(p) > maxLogBytes {
		tail := append([]byte(nil), o.copy.Bytes()[o.copy.Len()/2:]...)
		o.copy.Reset()
		o.copy.Write(tail)
	}
	o.copy.Write(p)
}

// toKmsg writes each complete line as one kmsg record. Records use facility user and level
// debug ("<15>") so that the kernel does not echo them on the console a second time at the
// default console log level; dmesg and the journal still show them.
func (o *Output) toKmsg(p []byte) {
	if o.kmsg == nil {
		return
	}
	o.pending = append(o.pending, p...)
	for {
		i := bytes.IndexByte(o.pending, '\n')
		if i < 0 {
			break
		}
		line := o.pending[:i]
		if len(line) > 0 {
			if len(line) > 900 { // kmsg refuses records over about 1 KiB
				line = line[:900]
			}
			o.kmsg.Write(append([]byte("<15>nodeinit: "), append(line, '\n')...))
		}
		o.pending = o.pending[i+1:]
	}
	o.pending = append([]byte(nil), o.pending...)
}

// Log returns a copy of everything written so far (up to the last 8 MiB).
func (o *Output) Log() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]byte(nil), o.copy.Bytes()...)
}

// SaveLog writes the log to dir/nodeinit.log, keeping the previous one as nodeinit.log.old,
// and syncs it. It returns the path written.
func (o *Output) SaveLog(dir string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("save log: no directory given")
	}
	path := filepath.Join(dir, "nodeinit.log")
	if _, err := os.Stat(path); err == nil {
		os.Rename(path, path+".old")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("save log to %s: %w", dir, err)
	}
	_, werr := f.Write(o.Log())
	serr := f.Sync()
	cerr := f.Close()
	for _, err := range []error{werr, serr, cerr} {
		if err != nil {
			return "", fmt.Errorf("save log to %s: %w", path, err)
		}
	}
	return path, nil
}

package initproc

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/nodeinit/nodeinit/early"
)

// bauds are the line speeds console= may give, as termios codes.
var bauds = map[int]uint32{
	9600: unix.B9600, 19200: unix.B19200, 38400: unix.B38400, 57600: unix.B57600,
	115200: unix.B115200, 230400: unix.B230400, 460800: unix.B460800, 921600: unix.B921600,
}

// openTerminal opens the console t under devDir for the installer screen: read and write,
// never as /init's controlling terminal, at console='s speed, with the input raw (each key
// as it is pressed, no echo, no signals) and the output as it was, so that lines still end
// where they should. A line without a size (a serial port) is given 80x24. restore puts the line back as it was found. A console that is not a
// terminal is refused: there is no keyboard there.
func openTerminal(devDir string, t early.Terminal) (rw io.ReadWriteCloser, restore func(), err error) {
	f, err := os.OpenFile(filepath.Join(devDir, t.Dev), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(f.Fd())
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s is not a terminal: %w", t.Dev, err)
	}
	if speed, ok := bauds[t.Baud]; ok {
		saved.Cflag = saved.Cflag&^unix.CBAUD | speed
		saved.Ispeed, saved.Ospeed = speed, speed
		unix.IoctlSetTermios(fd, unix.TCSETS, saved)
	}
	// A serial line has no size; the screen draws for 80x24, the least it needs.
	if ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil && (ws.Row == 0 || ws.Col == 0) {
		unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80})
	}
	raw := *saved
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: raw input: %w", t.Dev, err)
	}
	return f, func() { unix.IoctlSetTermios(fd, unix.TCSETS, saved) }, nil
}

// quietKernel stops the kernel's own messages (an ext4 mount, a disk found) from reaching
// the consoles while the installer screen is drawn, where they would tear its frame; they
// stay in the kernel log. restore puts the console log level back as it was.
func quietKernel() (restore func()) {
	const consoleOff, consoleOn = 6, 7 // syslog(2): SYSLOG_ACTION_CONSOLE_OFF, _ON
	if _, err := unix.Klogctl(consoleOff, nil); err != nil {
		return func() {}
	}
	return func() { unix.Klogctl(consoleOn, nil) }
}

package early

import "golang.org/x/sys/unix"

// noctty keeps a console we open from becoming /init's controlling terminal.
const noctty = unix.O_NOCTTY

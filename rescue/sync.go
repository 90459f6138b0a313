package rescue

import "golang.org/x/sys/unix"

func init() { register("sync", "", syncFS) }

// syncFS is sync(1): it writes every filesystem's dirty data to its disk.
func syncFS(c *call, args []string) error {
	if _, err := c.operands(args); err != nil {
		return err
	}
	unix.Sync()
	return nil
}

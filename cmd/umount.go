package cmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rencfs/rencfs/fusefs"
)

func newUmount(a *app) *cobra.Command {
	var mountPoint string
	var lazy bool
	c := &cobra.Command{
		Use:   "umount --mount-point M",
		Short: "Unmount a rencfs mount (the mount process then exits 0)",
		Long: "Umount detaches the filesystem at M, like fusermount3 -u. The rencfs mount process\n" +
			"serving it flushes everything and exits. --lazy detaches a busy or dead mount at once.",
		Example: "  rencfs umount -m ~/private",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			mounted, err := fusefs.IsMounted(mountPoint)
			if err != nil {
				return withCode(exitMount, err)
			}
			if !mounted {
				return withCode(exitMount, fmt.Errorf("%s is not mounted", mountPoint))
			}
			if lazy {
				err = fusefs.LazyUnmount(mountPoint)
			} else {
				err = fusefs.Unmount(mountPoint)
			}
			return withCode(exitMount, err)
		},
	}
	c.Flags().StringVarP(&mountPoint, "mount-point", "m", "", "the mount point")
	c.Flags().BoolVar(&lazy, "lazy", false, "detach now even if busy (fusermount3 -u -z)")
	c.MarkFlagRequired("mount-point")
	return c
}

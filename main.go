// Command rencfs mounts an encrypted filesystem.
package main

import "github.com/rencfs/rencfs/cmd"

func main() { cmd.Execute() }

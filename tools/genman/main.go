// Command genman writes the man pages of rencfs, from its cobra commands,
// into the directory named by its argument.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra/doc"

	"github.com/rencfs/rencfs/cmd"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: genman DIR")
		os.Exit(2)
	}
	if err := os.MkdirAll(os.Args[1], 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "genman:", err)
		os.Exit(1)
	}
	root := cmd.NewRoot()
	root.DisableAutoGenTag = true // reproducible: no date in the pages
	header := &doc.GenManHeader{Title: "RENCFS", Section: "1", Source: "rencfs", Manual: "rencfs manual"}
	// Reproducible builds set SOURCE_DATE_EPOCH; the pages then carry that date.
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
			t := time.Unix(sec, 0).UTC()
			header.Date = &t
		}
	}
	if err := doc.GenManTree(root, header, os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "genman:", err)
		os.Exit(1)
	}
}

package encrypted

import (
	"fmt"
	"sort"
	"strings"
	"syscall"
)

// Flags of SetXattr, as in setxattr(2).
const (
	XattrCreate  = 1 // fail with EEXIST if the attribute exists
	XattrReplace = 2 // fail with ENODATA if it does not
)

const (
	maxXattrName  = 255
	maxXattrValue = 64 << 10
	maxXattrTotal = 1 << 20 // per inode: they live encrypted inside it
)

// xattrNamespaces are the name prefixes the store keeps; ext4 answers
// EOPNOTSUPP for a namespace it does not know, and so does the store.
//
// POSIX ACLs (system.posix_acl_access and _default) are not supported
// yet, and are answered as a filesystem mounted without ACLs answers
// them: EOPNOTSUPP. Kept as opaque data they looked applied and were not:
// cp -a and cp -p set a copy's permissions through them, so copies came
// out 0600 and 0700, and setfacl changed nothing. Refused, cp and setfacl
// fall back to chmod for what mode bits can say, and fail loudly for
// what they cannot (a named user or group).
var xattrNamespaces = []string{"user.", "trusted.", "security."}

// checkXattrName refuses a name outside the known namespaces.
func checkXattrName(name string) error {
	for _, p := range xattrNamespaces {
		prefix := p[len(p)-1] == '.'
		if prefix && strings.HasPrefix(name, p) && len(name) > len(p) || !prefix && name == p {
			return nil
		}
	}
	return fmt.Errorf("xattr %q: %w", name, syscall.EOPNOTSUPP)
}

// GetXattr returns one extended attribute; ENODATA if absent.
func (fs *FS) GetXattr(ino Ino, name string) ([]byte, error) {
	if err := checkXattrName(name); err != nil {
		return nil, err
	}
	n, err := fs.begin(ino, fs.load)
	if err != nil {
		return nil, err
	}
	defer fs.end(n)
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.in.xattrs[name]
	if !ok {
		return nil, syscall.ENODATA
	}
	return append([]byte{}, v...), nil
}

// ListXattr returns the names of ino's extended attributes, sorted.
func (fs *FS) ListXattr(ino Ino) ([]string, error) {
	n, err := fs.begin(ino, fs.load)
	if err != nil {
		return nil, err
	}
	defer fs.end(n)
	n.mu.Lock()
	defer n.mu.Unlock()
	names := make([]string, 0, len(n.in.xattrs))
	for k := range n.in.xattrs {
		names = append(names, k)
	}
	sort.Strings(names)
	return names, nil
}

// SetXattr sets an extended attribute; flags are XattrCreate or XattrReplace.
func (fs *FS) SetXattr(ino Ino, name string, value []byte, flags uint32) error {
	switch {
	case name == "":
		return syscall.EINVAL
	case len(name) > maxXattrName:
		return syscall.ERANGE
	case len(value) > maxXattrValue:
		return syscall.E2BIG
	}
	if err := checkXattrName(name); err != nil {
		return err
	}
	n, err := fs.begin(ino, fs.load)
	if err != nil {
		return err
	}
	defer fs.end(n)
	n.mu.Lock()
	defer n.mu.Unlock()
	old, exists := n.in.xattrs[name]
	switch {
	case exists && flags&XattrCreate != 0:
		return syscall.EEXIST
	case !exists && flags&XattrReplace != 0:
		return syscall.ENODATA
	}
	total := len(name) + len(value)
	for k, v := range n.in.xattrs {
		total += len(k) + len(v)
	}
	if exists {
		total -= len(name) + len(old)
	}
	if total > maxXattrTotal {
		return syscall.ENOSPC
	}
	if n.in.xattrs == nil {
		n.in.xattrs = map[string][]byte{}
	}
	clear(old)
	n.in.xattrs[name] = append([]byte{}, value...)
	n.in.ctime = fs.now()
	n.dirty = true
	return nil
}

// RemoveXattr deletes an extended attribute; ENODATA if absent.
func (fs *FS) RemoveXattr(ino Ino, name string) error {
	if err := checkXattrName(name); err != nil {
		return err
	}
	n, err := fs.begin(ino, fs.load)
	if err != nil {
		return err
	}
	defer fs.end(n)
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.in.xattrs[name]
	if !ok {
		return syscall.ENODATA
	}
	clear(v)
	delete(n.in.xattrs, name)
	if len(n.in.xattrs) == 0 {
		n.in.xattrs = nil
	}
	n.in.ctime = fs.now()
	n.dirty = true
	return nil
}

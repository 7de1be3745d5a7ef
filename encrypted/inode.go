package encrypted

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"syscall"
	"time"
)

// Ino is an inode id: random 64-bit, except the root's.
type Ino uint64

// RootIno is the root directory's fixed id.
const RootIno Ino = 1

// inode is the decrypted content of an inode object.
type inode struct {
	mode       uint32 // S_IFMT type bits and permission bits
	uid, gid   uint32
	nlink      uint32
	rdev       uint64
	size       uint64
	atime      time.Time
	mtime      time.Time
	ctime      time.Time
	parent     Ino    // directories only: for "..", rename cycle checks
	links      []link // the entries that name this inode (see link)
	target     []byte // symlinks only
	extents    extents
	inline     []byte // chunk 0, when small enough to live here (see maxInline)
	xattrs     map[string][]byte
	generation uint64 // bumped on every encode, for debugging rollbacks
}

// maxInodePlain bounds an inode's plaintext, and so what a read of an
// inode object may cost: its xattrs take up to 1 MiB, and a very sparse
// file's extents 16 bytes per written run. A change that would pass it
// fails with EFBIG.
const maxInodePlain = 16 << 20

// maxInodeObject is the largest valid inode object.
const maxInodeObject = maxInodePlain + maxSealOverhead

// inodeVersion is the layout version of the inode plaintext.
const inodeVersion = 1

// link is one entry naming an inode: its directory and its name's tag.
// An inode lists its links, inside its own ciphertext, so that an entry
// counts only if its inode lists it: an entry put back from an older copy
// of the data dir (replayed) is refused, and can never make a later
// unlink free an inode that a real name still uses. A non-directory's
// link count is the number of its links.
type link struct {
	dir Ino
	tag [tagSize]byte
}

func (n *inode) hasLink(l link) bool { return slices.Contains(n.links, l) }

// addLink lists l, before its entry is written.
func (n *inode) addLink(l link) {
	if !n.hasLink(l) {
		n.links = append(n.links, l)
	}
	n.countLinks()
}

// removeLink forgets l, after its entry is gone; false if l was not
// listed (the entry was stale).
func (n *inode) removeLink(l link) bool {
	i := slices.Index(n.links, l)
	if i < 0 {
		return false
	}
	n.links = slices.Delete(n.links, i, i+1)
	n.countLinks()
	return true
}

// countLinks sets a non-directory's link count from its links; a
// directory's counts its subdirectories too, and is kept by the callers.
func (n *inode) countLinks() {
	if !n.isDir() {
		n.nlink = uint32(len(n.links))
	}
}

// entry is a directory entry naming this inode, whose id is ino.
func (n *inode) entry(name string, ino Ino) *entry {
	return &entry{name: name, ino: ino, typ: n.mode & syscall.S_IFMT}
}

// scrub zeroes the plaintext an inode holds: inline content, xattr
// values, a link target. The inode must not be used afterwards.
func (n *inode) scrub() {
	clear(n.inline)
	clear(n.target)
	for _, v := range n.xattrs {
		clear(v)
	}
}

func (n *inode) isDir() bool { return n.mode&syscall.S_IFMT == syscall.S_IFDIR }
func (n *inode) isReg() bool { return n.mode&syscall.S_IFMT == syscall.S_IFREG }

func appendTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

func appendBytes(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// encode is the plaintext of an inode object; layout in docs/format.md.
func (n *inode) encode() []byte {
	// Sized exactly: a growing append would leave copies of the
	// plaintext so far (xattrs, inline content) in the heap.
	size := 128 + 24*len(n.links) + len(n.target) + 16*len(n.extents) + len(n.inline)
	for k, v := range n.xattrs {
		size += 8 + len(k) + len(v)
	}
	b := make([]byte, 0, size)
	b = append(b, inodeVersion)
	b = binary.BigEndian.AppendUint32(b, n.mode)
	b = binary.BigEndian.AppendUint32(b, n.uid)
	b = binary.BigEndian.AppendUint32(b, n.gid)
	b = binary.BigEndian.AppendUint32(b, n.nlink)
	b = binary.BigEndian.AppendUint64(b, n.rdev)
	b = binary.BigEndian.AppendUint64(b, n.size)
	b = appendTime(b, n.atime)
	b = appendTime(b, n.mtime)
	b = appendTime(b, n.ctime)
	b = binary.BigEndian.AppendUint64(b, uint64(n.parent))
	b = binary.BigEndian.AppendUint64(b, n.generation)
	b = binary.BigEndian.AppendUint32(b, uint32(len(n.links)))
	for _, l := range n.links {
		b = binary.BigEndian.AppendUint64(b, uint64(l.dir))
		b = append(b, l.tag[:]...)
	}
	b = appendBytes(b, n.target)
	b = binary.BigEndian.AppendUint32(b, uint32(len(n.extents)))
	for _, e := range n.extents {
		b = binary.BigEndian.AppendUint64(b, e.start)
		b = binary.BigEndian.AppendUint64(b, e.end)
	}
	names := make([]string, 0, len(n.xattrs))
	for k := range n.xattrs {
		names = append(names, k)
	}
	sort.Strings(names)
	b = binary.BigEndian.AppendUint32(b, uint32(len(names)))
	for _, k := range names {
		b = appendBytes(b, []byte(k))
		b = binary.BigEndian.AppendUint32(b, uint32(len(n.xattrs[k])))
		b = appendPlain(b, n.xattrs[k])
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(n.inline)))
	return appendPlain(b, n.inline)
}

// appendPlain appends plaintext p to b, copying it inside erase.Do (see
// copyPlain). encode sizes b so that this never grows it.
func appendPlain(b, p []byte) []byte {
	b = slices.Grow(b, len(p))
	return b[:len(b)+copyPlain(b[len(b):len(b)+len(p)], p)]
}

// decoder reads big-endian fields and remembers the first short read.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil // the first error stands
	}
	if n < 0 || n > len(d.b) {
		d.err = errShort
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) u8() uint8 {
	if s := d.take(1); s != nil {
		return s[0]
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if s := d.take(4); s != nil {
		return binary.BigEndian.Uint32(s)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if s := d.take(8); s != nil {
		return binary.BigEndian.Uint64(s)
	}
	return 0
}

func (d *decoder) time() time.Time {
	sec, nsec := d.u64(), d.u32()
	if nsec >= 1e9 && d.err == nil {
		d.err = fmt.Errorf("nanoseconds %d out of range", nsec)
	}
	return time.Unix(int64(sec), int64(nsec))
}

func (d *decoder) bytes() []byte {
	n := d.u32()
	if d.err == nil && uint64(n) > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	return d.take(int(n))
}

// decodeInode parses an inode plaintext. It is reached only after
// authentication, but still checks every length: fuzzing feeds it garbage.
func decodeInode(b []byte) (*inode, error) {
	d := &decoder{b: b}
	ver := d.u8()
	if d.err == nil && ver != inodeVersion {
		d.err = fmt.Errorf("version %d", ver)
	}
	n := &inode{}
	n.mode = d.u32()
	n.uid = d.u32()
	n.gid = d.u32()
	n.nlink = d.u32()
	n.rdev = d.u64()
	n.size = d.u64()
	n.atime = d.time()
	n.mtime = d.time()
	n.ctime = d.time()
	n.parent = Ino(d.u64())
	n.generation = d.u64()
	nl := d.u32()
	if d.err == nil && uint64(nl)*(8+tagSize) > uint64(len(d.b)) {
		d.err = errShort
	}
	for i := uint32(0); i < nl && d.err == nil; i++ {
		l := link{dir: Ino(d.u64())}
		copy(l.tag[:], d.take(tagSize))
		if slices.Contains(n.links, l) {
			d.err = fmt.Errorf("link %d listed twice", i)
		}
		n.links = append(n.links, l)
	}
	if d.err == nil && n.mode&syscall.S_IFMT != syscall.S_IFDIR && n.nlink != nl {
		d.err = fmt.Errorf("link count %d, %d links", n.nlink, nl)
	}
	if t := d.bytes(); len(t) > 0 {
		n.target = append([]byte(nil), t...)
	}
	ne := d.u32()
	if d.err == nil && uint64(ne)*16 > uint64(len(d.b)) {
		d.err = errShort
	}
	if d.err == nil && ne > 0 {
		n.extents = make(extents, 0, ne)
	}
	for i := uint32(0); i < ne && d.err == nil; i++ {
		e := extent{start: d.u64(), end: d.u64()}
		if e.start >= e.end || (i > 0 && e.start <= n.extents[i-1].end) {
			d.err = fmt.Errorf("extent %d [%d,%d) out of order", i, e.start, e.end)
			break
		}
		n.extents = append(n.extents, e)
	}
	nx := d.u32()
	if d.err == nil && uint64(nx)*8 > uint64(len(d.b)) {
		d.err = errShort
	}
	if d.err == nil && nx > 0 {
		n.xattrs = make(map[string][]byte, nx)
	}
	for i := uint32(0); i < nx && d.err == nil; i++ {
		k, v := d.bytes(), d.bytes()
		if d.err == nil {
			n.xattrs[string(k)] = append([]byte{}, v...)
		}
	}
	if c := d.bytes(); len(c) > 0 {
		n.inline = make([]byte, len(c))
		copyPlain(n.inline, c)
	}
	if d.err == nil && len(n.inline) > maxInline {
		d.err = fmt.Errorf("inline content of %d bytes", len(n.inline))
	}
	if d.err == nil && len(n.inline) > 0 && n.extents.contains(0) {
		d.err = errors.New("chunk 0 both inline and stored")
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode inode: %v: %w", d.err, ErrCorrupt)
	}
	return n, nil
}

package encrypted

import "sort"

// extent is a run [start, end) of chunk indexes that exist on disk.
type extent struct{ start, end uint64 }

// extents lists, sorted and non-adjacent, the chunks a file has written.
// Chunks outside them are holes and read as zeros; a chunk inside them that
// is missing on disk has been deleted by someone, and reads as ErrCorrupt.
// Sequential files need one extent; a sparse file one per written run.
type extents []extent

// find returns the index of the first extent whose end is > idx.
func (x extents) find(idx uint64) int {
	return sort.Search(len(x), func(i int) bool { return x[i].end > idx })
}

func (x extents) contains(idx uint64) bool {
	i := x.find(idx)
	return i < len(x) && x[i].start <= idx
}

// add marks chunk idx as present, merging neighbouring runs.
func (x extents) add(idx uint64) extents {
	i := x.find(idx)
	if i < len(x) && x[i].start <= idx {
		return x
	}
	joinLeft := i > 0 && x[i-1].end == idx
	joinRight := i < len(x) && x[i].start == idx+1
	switch {
	case joinLeft && joinRight:
		x[i-1].end = x[i].end
		return append(x[:i], x[i+1:]...)
	case joinLeft:
		x[i-1].end = idx + 1
	case joinRight:
		x[i].start = idx
	default:
		x = append(x, extent{})
		copy(x[i+1:], x[i:])
		x[i] = extent{idx, idx + 1}
	}
	return x
}

// truncate drops every chunk index >= n.
func (x extents) truncate(n uint64) extents {
	i := x.find(n)
	if i < len(x) && x[i].start < n {
		x[i].end = n
		i++
	}
	return x[:i]
}

// dropFirst removes chunk 0, whose content has moved into the inode.
func (x extents) dropFirst() extents {
	switch {
	case len(x) == 0 || x[0].start > 0:
		return x
	case x[0].end == 1:
		return x[1:]
	}
	x[0].start = 1
	return x
}

// within returns the parts of x inside [from, to).
func (x extents) within(from, to uint64) extents {
	var in extents
	for _, e := range x {
		if s, t := max(e.start, from), min(e.end, to); s < t {
			in = append(in, extent{s, t})
		}
	}
	return in
}

// remove drops the chunk indexes [from, to) from x.
func (x extents) remove(from, to uint64) extents {
	var out extents
	for _, e := range x {
		if e.end <= from || e.start >= to {
			out = append(out, e)
			continue
		}
		if e.start < from {
			out = append(out, extent{e.start, from})
		}
		if e.end > to {
			out = append(out, extent{to, e.end})
		}
	}
	return out
}

package s3

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"sync"
)

// A part is buffered in slabs of slabSize taken from a shared pool, so a
// part of a large nominal size costs only the memory its bytes need (a
// small NAR streamed with a 525 MiB part size takes a few slabs).
const slabSize = 1 << 20

var slabPool = sync.Pool{New: func() any { s := make([]byte, slabSize); return &s }}

type partBuf struct {
	slabs []*[]byte
	n     int64
}

// fill reads from r until the buffer holds limit bytes or r ends; eof
// reports that r ended (io.EOF) before limit was reached.
func (p *partBuf) fill(r io.Reader, limit int64) (eof bool, err error) {
	for p.n < limit {
		i := int(p.n / slabSize)
		if i == len(p.slabs) {
			p.slabs = append(p.slabs, slabPool.Get().(*[]byte))
		}
		off := int(p.n % slabSize)
		end := min(slabSize, off+int(limit-p.n))
		m, err := r.Read((*p.slabs[i])[off:end])
		p.n += int64(m)
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
	return false, nil
}

// release returns the slabs to the pool.
func (p *partBuf) release() {
	for _, s := range p.slabs {
		slabPool.Put(s)
	}
	p.slabs, p.n = nil, 0
}

// writeTo feeds the bytes to w (a hash).
func (p *partBuf) writeTo(w io.Writer) {
	for i, s := range p.slabs {
		end := min(int64(slabSize), p.n-int64(i)*slabSize)
		if end <= 0 {
			break
		}
		w.Write((*s)[:end])
	}
}

func (p *partBuf) sum(h hash.Hash) []byte {
	p.writeTo(h)
	return h.Sum(nil)
}

func (p *partBuf) sha256Hex() string { return hex.EncodeToString(p.sum(sha256.New())) }
func (p *partBuf) md5Hex() string    { return hex.EncodeToString(p.sum(md5.New())) }

// reader returns an io.ReadSeeker over the bytes (a retried request seeks
// back to 0).
func (p *partBuf) reader() *partReader { return &partReader{p: p} }

type partReader struct {
	p   *partBuf
	off int64
}

func (r *partReader) Read(b []byte) (int, error) {
	if r.off >= r.p.n {
		return 0, io.EOF
	}
	s := (*r.p.slabs[r.off/slabSize])[r.off%slabSize:]
	if rest := r.p.n - r.off; int64(len(s)) > rest {
		s = s[:rest]
	}
	n := copy(b, s)
	r.off += int64(n)
	return n, nil
}

func (r *partReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.p.n
	default:
		return 0, errors.New("partReader.Seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("partReader.Seek: negative position")
	}
	r.off = offset
	return offset, nil
}

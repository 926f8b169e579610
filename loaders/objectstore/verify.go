package objectstore

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/baasmigrate/baasmigrate/internal/record"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MismatchError says the bytes of an object do not match a checksum or the
// length its source declared. Copies failing with it are retried, then
// rejected with its text as the reason.
type MismatchError struct {
	// What names the bytes that were checked ("bytes read from the source",
	// "the object stored at the target").
	What string
	// Detail says which checksum or length differed, with both values.
	Detail string
}

func (e *MismatchError) Error() string { return e.What + ": " + e.Detail }

// ChecksumMismatch marks the error as a checksum mismatch.
func (e *MismatchError) ChecksumMismatch() bool { return true }

// isMismatch reports whether err is, or wraps, an error saying bytes did
// not match their checksum: a MismatchError, or a source's own error with a
// ChecksumMismatch() bool method (an extractor of files reading bytes that
// fail the checksum their source sent).
func isMismatch(err error) bool {
	var m interface{ ChecksumMismatch() bool }
	return errors.As(err, &m) && m.ChecksumMismatch()
}

// verifier passes an object's bytes through while computing its checksums,
// and checks them against the source's declaration the moment the last
// declared byte is read: that Read returns io.EOF when everything matches,
// and a *MismatchError (or the source's own error at its end) otherwise.
// Writers that stop at the first error — an upload body, io.Copy into a
// temporary file — therefore never complete an object whose bytes are
// wrong. It never reads more than the declared size from the source except
// for a final one-byte probe that the source has ended.
type verifier struct {
	r    io.Reader
	f    record.File
	n    int64
	md5  hash.Hash // nil unless the source declares an MD5 and no CRC-32C
	crc  uint32
	done bool
	err  error
}

func newVerifier(r io.Reader, f record.File) *verifier {
	v := &verifier{r: r, f: f}
	if f.MD5 != nil && !f.HasCRC32C {
		// The CRC-32C, computed in hardware, suffices when declared; MD5
		// costs a CPU core per ~600 MB/s.
		v.md5 = md5.New()
	}
	return v
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if rest := v.f.Size - v.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	if len(p) == 0 {
		v.err = v.finish()
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.add(p[:n])
	switch {
	case err == io.EOF && v.n < v.f.Size:
		v.err = &MismatchError{What: "bytes read from the source", Detail: fmt.Sprintf("the object ended after %d of its %d bytes", v.n, v.f.Size)}
	case err != nil && err != io.EOF:
		v.err = err
	case v.n == v.f.Size:
		v.err = v.finish()
	}
	return n, v.err
}

func (v *verifier) add(b []byte) {
	v.n += int64(len(b))
	v.crc = crc32.Update(v.crc, castagnoli, b)
	if v.md5 != nil {
		v.md5.Write(b)
	}
}

// finish checks that the source has ended and that the checksums match.
// It returns io.EOF when they do.
func (v *verifier) finish() error {
	var probe [1]byte
	for {
		n, err := v.r.Read(probe[:])
		if n > 0 {
			return &MismatchError{What: "bytes read from the source", Detail: fmt.Sprintf("the object is longer than its declared %d bytes", v.f.Size)}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err // e.g. the source client's own checksum check at the end
		}
	}
	v.done = true
	if v.f.HasCRC32C && v.crc != v.f.CRC32C {
		return &MismatchError{What: "bytes read from the source", Detail: fmt.Sprintf("crc32c %08x, the source declares %08x", v.crc, v.f.CRC32C)}
	}
	if v.md5 != nil {
		if sum := v.md5.Sum(nil); !bytes.Equal(sum, v.f.MD5) {
			return &MismatchError{What: "bytes read from the source", Detail: fmt.Sprintf("md5 %s, the source declares %s", hex.EncodeToString(sum), hex.EncodeToString(v.f.MD5))}
		}
	}
	return io.EOF
}

// verified reports whether every declared byte was read and matched.
func (v *verifier) verified() bool { return v.done && v.err == io.EOF }

// crc32c returns the CRC-32C of the bytes read so far.
func (v *verifier) crc32c() uint32 { return v.crc }

package gen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// blockSize is both the unit of the payload stream and the write buffer size,
// so memory stays bounded however large a recording is.
const blockSize = 1 << 20

// mix is splitmix64's finalizer: it turns nearby inputs (seed, seed+1, block
// numbers) into unrelated PCG seeds.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// newRand returns a generator for one purpose (tag) of one seed.
func newRand(seed int64, tag uint64) *rand.Rand {
	return rand.New(rand.NewPCG(mix(uint64(seed)^mix(tag)), mix(uint64(seed)+tag)))
}

// fillBlock writes block idx of the payload stream of seed into b.
// Each block is seeded on its own, so a recording can be continued at any
// offset without regenerating what precedes it. PCG is used over ChaCha8
// because it fills buffers about twice as fast; explicit little-endian
// output keeps the bytes identical on big-endian machines.
func fillBlock(b []byte, seed, idx int64) {
	p := rand.NewPCG(mix(uint64(seed)), mix(uint64(seed)^mix(uint64(idx))))
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], p.Uint64())
	}
}

// writePayload writes bytes [from, to) of the payload stream of seed.
func writePayload(w io.Writer, seed, from, to int64) error {
	buf := make([]byte, blockSize)
	for pos := from; pos < to; {
		idx, off := pos/blockSize, pos%blockSize
		fillBlock(buf, seed, idx)
		chunk := buf[off:min(blockSize, off+to-pos)]
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		pos += int64(len(chunk))
	}
	return nil
}

// writeMedia writes bytes [from, to) of the media file named name: a container
// header followed by the payload stream. Headers never encode the length
// (MP4 mdat size 0 and RIFF 0xFFFFFFFF both mean "until end of file", as live
// recorders write them), so every media file is a prefix of a longer one with
// the same seed.
func writeMedia(w io.Writer, name string, seed, from, to int64) error {
	hdr := header(name, seed, false)
	h := int64(len(hdr))
	if from < h {
		if _, err := w.Write(hdr[from:min(h, to)]); err != nil {
			return err
		}
		from = h
	}
	if to <= from {
		return nil
	}
	return writePayload(w, seed, from-h, to-h)
}

// WriteMedia writes one media-like file of size n (deterministic in seed):
// an MP4-like header, or a RIFF/WAVE one for a .wav path, then incompressible
// payload. Writing n bytes and then appending m with the same seed gives the
// same file as writing n+m.
func WriteMedia(path string, n int64, seed int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return closeAfter(f, writeMedia(f, path, seed, 0, n))
}

// Append appends n media-like bytes to path (a recording that grows while a
// hearing runs). With the seed the file was written with, the new bytes
// continue its stream exactly.
func Append(path string, n int64, seed int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	size := st.Size()
	return closeAfter(f, writeMedia(f, path, seed, size, size+n))
}

// Remux writes a "remuxed" variant of src to dst: same media payload,
// different container header and a few inserted bytes so content-defined
// chunking must realign. The container kind (MP4 or RIFF) is kept; a file
// with neither header is treated as all payload.
func Remux(src, dst string, seed int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	head := make([]byte, min(st.Size(), 64<<10))
	if _, err := io.ReadFull(in, head); err != nil {
		return fmt.Errorf("remux %s: %w", src, err)
	}
	// Creating dst would truncate src before it is read.
	if dst, err := os.Stat(dst); err == nil && os.SameFile(st, dst) {
		return fmt.Errorf("remux %s: destination is the source", src)
	}
	name, off := payloadOffset(src, head)
	if _, err := in.Seek(off, io.SeekStart); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	return closeAfter(out, remux(out, in, name, st.Size()-off, seed))
}

// remux writes the remuxed header, then n payload bytes from r with short
// filler runs inserted at seed-chosen offsets (about one per 8 MiB, as a
// remuxer adds fragment or padding boxes).
func remux(w io.Writer, r io.Reader, name string, n, seed int64) error {
	if _, err := w.Write(header(name, seed, true)); err != nil {
		return err
	}
	rng := newRand(seed, 3)
	cuts := make([]int64, 1+n/(8<<20))
	for i := range cuts {
		cuts[i] = rng.Int64N(max(n, 1))
	}
	slices.Sort(cuts)
	var pos int64
	for _, c := range cuts {
		if _, err := io.CopyN(w, r, c-pos); err != nil {
			return err
		}
		pos = c
		filler := make([]byte, 8+rng.IntN(25))
		fillRand(rng, filler)
		if _, err := w.Write(filler); err != nil {
			return err
		}
	}
	_, err := io.CopyN(w, r, n-pos)
	return err
}

// payloadOffset finds where the media payload starts in a file beginning with
// head: after the MP4 mdat box header or the RIFF data chunk header. It
// returns a name whose extension selects the container for the new header.
func payloadOffset(src string, head []byte) (string, int64) {
	n := int64(len(head))
	switch {
	case n >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WAVE":
		for p := int64(12); p+8 <= n; {
			if string(head[p:p+4]) == "data" {
				return "x.wav", p + 8
			}
			size := int64(binary.LittleEndian.Uint32(head[p+4:]))
			p += 8 + size + size&1
		}
	case n >= 8 && string(head[4:8]) == "ftyp":
		for p := int64(0); p+8 <= n; {
			if string(head[p+4:p+8]) == "mdat" {
				return "x.mp4", p + 8
			}
			size := int64(binary.BigEndian.Uint32(head[p:]))
			if size < 8 {
				break
			}
			p += size
		}
	}
	return src, 0
}

// header returns the container header for a media file: RIFF/WAVE for .wav,
// MP4 otherwise. Its length depends only on seed, and a remuxed header
// differs from the original in brand, text and padding.
func header(name string, seed int64, remuxed bool) []byte {
	rng := newRand(seed, 1)
	note := fmt.Sprintf("courtbak test recording seed=%d", seed)
	if remuxed {
		rng = newRand(seed, 2)
		note = fmt.Sprintf("courtbak remuxed recording seed=%d", seed)
	}
	pad := make([]byte, 256+rng.IntN(1792))
	fillRand(rng, pad)
	if strings.EqualFold(filepath.Ext(name), ".wav") {
		return wavHeader(note, pad)
	}
	brand := "isom"
	if remuxed {
		brand = "mp42"
	}
	var b bytes.Buffer
	b.Write(box("ftyp", []byte(brand), be32(0x200), []byte("isomiso2avc1mp41")))
	mvhd := make([]byte, 100)
	binary.BigEndian.PutUint32(mvhd[4:], rng.Uint32()) // creation time
	binary.BigEndian.PutUint32(mvhd[12:], 90000)       // timescale
	binary.BigEndian.PutUint32(mvhd[20:], 0x00010000)  // rate 1.0
	binary.BigEndian.PutUint32(mvhd[96:], 3)           // next track id
	b.Write(box("moov", box("mvhd", mvhd), box("udta", box("\xa9cmt", []byte(note))), box("free", pad)))
	// Size 0: the mdat box runs to the end of the file, however long it grows.
	b.WriteString("\x00\x00\x00\x00mdat")
	return b.Bytes()
}

// wavHeader is a 48 kHz 16-bit stereo PCM header with unknown (streaming)
// lengths, a comment and a JUNK padding chunk.
func wavHeader(note string, pad []byte) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF\xff\xff\xff\xffWAVE")
	fmtChunk := make([]byte, 16)
	binary.LittleEndian.PutUint16(fmtChunk[0:], 1)      // PCM
	binary.LittleEndian.PutUint16(fmtChunk[2:], 2)      // channels
	binary.LittleEndian.PutUint32(fmtChunk[4:], 48000)  // sample rate
	binary.LittleEndian.PutUint32(fmtChunk[8:], 192000) // byte rate
	binary.LittleEndian.PutUint16(fmtChunk[12:], 4)     // block align
	binary.LittleEndian.PutUint16(fmtChunk[14:], 16)    // bits per sample
	b.Write(riffChunk("fmt ", fmtChunk))
	b.Write(riffChunk("LIST", append([]byte("INFO"), riffChunk("ICMT", []byte(note))...)))
	b.Write(riffChunk("JUNK", pad))
	b.WriteString("data\xff\xff\xff\xff")
	return b.Bytes()
}

func box(typ string, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	return append(append(be32(uint32(8+len(body))), typ...), body...)
}

func riffChunk(id string, body []byte) []byte {
	b := binary.LittleEndian.AppendUint32([]byte(id), uint32(len(body)))
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func fillRand(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// closeAfter closes f and reports err together with the close error, so a
// failed write-back is never lost.
func closeAfter(f *os.File, err error) error {
	return errors.Join(err, f.Close())
}

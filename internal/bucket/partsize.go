package bucket

// Multipart limits shared by every S3-compatible store.
const (
	// MaxParts is the most parts an S3 multipart upload may have.
	MaxParts = 10000
	// MinPartSize is the smallest part (all but the last) S3 accepts.
	MinPartSize = 5 << 20
	// MaxPartSize is the largest part S3 accepts.
	MaxPartSize = 5 << 30
	// MaxStreamSize is the length assumed for a stream of unknown size
	// without a SizeHint: S3's largest object, 5 TiB.
	MaxStreamSize = 5 << 40
)

// ChoosePartSize returns the part size for an object of size bytes (-1:
// unknown, treated as MaxStreamSize): at least minPart (itself at least
// MinPartSize) and large enough that the object fits in MaxParts parts,
// rounded up to a whole MiB. Every part but the last has this size (R2
// requires equal parts).
func ChoosePartSize(size, minPart int64) int64 {
	if minPart < MinPartSize {
		minPart = MinPartSize
	}
	if size < 0 {
		size = MaxStreamSize
	}
	p := (size + MaxParts - 1) / MaxParts
	if p < minPart {
		p = minPart
	}
	const mib = 1 << 20
	p = (p + mib - 1) / mib * mib
	if p > MaxPartSize {
		p = MaxPartSize
	}
	return p
}

// PartCount is the number of parts of partSize an object of size bytes
// has (at least 1).
func PartCount(size, partSize int64) int {
	if size <= 0 {
		return 1
	}
	return int((size + partSize - 1) / partSize)
}

package remote

import "context"

// Wrapper is a backend that decorates another one (retries, rate limits,
// fault injection). Unwrap returns the backend it decorates.
type Wrapper interface {
	Unwrap() Backend
}

// As finds an optional capability of a storage stack: the first backend in
// be's Unwrap chain, be itself first, that implements T. It is the one way
// courtbak looks for a capability (an upload concurrency, a bucket to
// create, reading a range from whichever copy passes a check), so a
// decorator never hides one by accident. Capabilities are small interfaces,
// declared by the package that uses them.
//
// A capability found below a decorator is called directly: a decorator that
// must act on its calls implements the capability itself.
func As[T any](be Backend) (T, bool) {
	for be != nil {
		if c, ok := be.(T); ok {
			return c, true
		}
		w, ok := be.(Wrapper)
		if !ok {
			break
		}
		be = w.Unwrap()
	}
	var zero T
	return zero, false
}

// connectionsHint is a backend that knows how many uploads at once suit it.
type connectionsHint interface {
	Connections() int
}

// Connections returns how many uploads at once suit be: the answer of the
// first backend in its Unwrap chain that has one, else 2.
func Connections(be Backend) int {
	if c, ok := As[connectionsHint](be); ok {
		return c.Connections()
	}
	return 2
}

// readSizeHint is a backend that knows how large a read suits it.
type readSizeHint interface {
	ReadSize() int64
}

// ReadSize returns how many bytes one read of be should fetch at least when
// the caller needs them, to spare requests: the answer of the first
// backend in its Unwrap chain that has one, else 0 (no preference).
func ReadSize(be Backend) int64 {
	if c, ok := As[readSizeHint](be); ok {
		return c.ReadSize()
	}
	return 0
}

// bucketCreator is a backend with a container (an S3 bucket) that init may
// have to create.
type bucketCreator interface {
	CreateBucketIfMissing(context.Context) error
}

// CreateBucketIfMissing creates the bucket (or equivalent container) under
// be, looking through wrappers, when the backend has one; init calls it.
// Backends without a container (Local creates directories on write) need
// nothing.
func CreateBucketIfMissing(ctx context.Context, be Backend) error {
	if c, ok := As[bucketCreator](be); ok {
		return c.CreateBucketIfMissing(ctx)
	}
	return nil
}

package remote

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrInjected is the transient error Faulty injects; errors.Is finds it and
// IsTransient treats it as transient, like a reset connection.
var ErrInjected error = injectedError{}

type injectedError struct{}

func (injectedError) Error() string   { return "injected fault" }
func (injectedError) Transient() bool { return true }

// FaultConfig says how often Faulty misbehaves. Rates are shares of calls
// in [0, 1].
type FaultConfig struct {
	// Seed makes the sequence of faults reproducible (for one sequence of
	// calls).
	Seed uint64
	// FailRate is the share of calls failing with ErrInjected. Half of the
	// failed Saves fail after storing the object (a lost answer), and a
	// failed List fails after delivering a few objects.
	FailRate float64
	// DelayRate is the share of calls delayed by Delay before they run.
	DelayRate float64
	Delay     time.Duration
	// TruncateRate is the share of Loads whose reader breaks off with
	// io.ErrUnexpectedEOF, like a dropped connection.
	TruncateRate float64
	// CorruptRate is the share of Loads that flip one bit of the data read,
	// silently, like a bad disk or a broken proxy.
	CorruptRate float64
}

// Faulty wraps a backend and injects faults, for tests of any package.
// Besides the random faults of its FaultConfig it can fail chosen handles
// and simulate an outage in which every call fails.
type Faulty struct {
	be  Backend
	cfg FaultConfig

	mu       sync.Mutex
	rnd      *rand.Rand
	outage   bool
	handles  map[Handle]error
	injected int
}

// NewFaulty wraps be.
func NewFaulty(be Backend, cfg FaultConfig) *Faulty {
	return &Faulty{
		be:      be,
		cfg:     cfg,
		rnd:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		handles: make(map[Handle]error),
	}
}

// SetFaults replaces the fault rates, for example once a repository is set
// up through the wrapper. The random sequence continues.
func (f *Faulty) SetFaults(cfg FaultConfig) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg = cfg
}

func (f *Faulty) config() FaultConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
}

// SetOutage makes every call fail with ErrInjected (on) or lets them
// through again (off).
func (f *Faulty) SetOutage(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outage = on
}

// FailHandle makes every call on h fail with err (wrapped), e.g. ErrNotFound
// to make an object vanish; a nil err ends that. A handle with an empty
// Name fails List of its type.
func (f *Faulty) FailHandle(h Handle, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.handles, h)
		return
	}
	f.handles[h] = err
}

// Injected returns how many faults (of any kind) were injected so far.
func (f *Faulty) Injected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

// Unwrap returns the wrapped backend.
func (f *Faulty) Unwrap() Backend { return f.be }

// Location returns the wrapped backend's location.
func (f *Faulty) Location() string { return f.be.Location() }

// Close closes the wrapped backend.
func (f *Faulty) Close() error { return f.be.Close() }

// chance draws whether an event of probability p happens, and counts it.
func (f *Faulty) chance(p float64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p > 0 && f.rnd.Float64() < p {
		f.injected++
		return true
	}
	return false
}

func (f *Faulty) intN(n int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rnd.IntN(n)
}

// before applies the faults every call shares: outage, failed handle and
// delay. It returns the error the call must fail with, if any.
func (f *Faulty) before(ctx context.Context, op string, h Handle) error {
	f.mu.Lock()
	outage, herr := f.outage, f.handles[h]
	if outage || herr != nil {
		f.injected++
	}
	f.mu.Unlock()
	if outage {
		return fmt.Errorf("%s %s: outage: %w", op, h, ErrInjected)
	}
	if herr != nil {
		return fmt.Errorf("%s %s: %w", op, h, herr)
	}
	if f.chance(f.config().DelayRate) {
		if err := sleepCtx(ctx, f.config().Delay); err != nil {
			return fmt.Errorf("%s %s: %w", op, h, err)
		}
	}
	return nil
}

// Save may fail before or after saving.
func (f *Faulty) Save(ctx context.Context, h Handle, data []byte) error {
	if err := f.before(ctx, "save", h); err != nil {
		return err
	}
	if !f.chance(f.config().FailRate) {
		return f.be.Save(ctx, h, data)
	}
	if f.intN(2) == 0 {
		if err := f.be.Save(ctx, h, data); err != nil {
			return err
		}
	}
	return fmt.Errorf("save %s: %w", h, ErrInjected)
}

// Load may fail, or hand fn a reader that breaks off or corrupts a bit.
func (f *Faulty) Load(ctx context.Context, h Handle, offset, length int64, fn func(io.Reader) error) error {
	if err := f.before(ctx, "load", h); err != nil {
		return err
	}
	if f.chance(f.config().FailRate) {
		return fmt.Errorf("load %s: %w", h, ErrInjected)
	}
	truncate, corrupt := f.chance(f.config().TruncateRate), f.chance(f.config().CorruptRate)
	if !truncate && !corrupt {
		return f.be.Load(ctx, h, offset, length, fn)
	}
	// Where in the first read the fault hits, as a fraction of it.
	at := f.intN(1 << 16)
	return f.be.Load(ctx, h, offset, length, func(rd io.Reader) error {
		return fn(&faultyReader{rd: rd, at: at, truncate: truncate, corrupt: corrupt})
	})
}

// faultyReader damages the first non-empty read: it either cuts it short
// and fails, or flips one bit in it.
type faultyReader struct {
	rd                io.Reader
	at                int
	truncate, corrupt bool
	done              bool
}

func (r *faultyReader) Read(b []byte) (int, error) {
	if r.done && r.truncate {
		return 0, io.ErrUnexpectedEOF
	}
	n, err := r.rd.Read(b)
	if n == 0 || r.done {
		return n, err
	}
	r.done = true
	i := r.at * n >> 16
	if r.truncate {
		return i, io.ErrUnexpectedEOF
	}
	b[i] ^= 1 << (r.at % 8)
	return n, err
}

// Stat may fail.
func (f *Faulty) Stat(ctx context.Context, h Handle) (ObjectInfo, error) {
	if err := f.before(ctx, "stat", h); err != nil {
		return ObjectInfo{}, err
	}
	if f.chance(f.config().FailRate) {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", h, ErrInjected)
	}
	return f.be.Stat(ctx, h)
}

// List may fail after delivering a few objects (or at the end).
func (f *Faulty) List(ctx context.Context, t Type, fn func(ObjectInfo) error) error {
	if err := f.before(ctx, "list", Handle{Type: t}); err != nil {
		return err
	}
	if !f.chance(f.config().FailRate) {
		return f.be.List(ctx, t, fn)
	}
	failAfter := f.intN(8)
	n := 0
	err := f.be.List(ctx, t, func(fi ObjectInfo) error {
		if n == failAfter {
			return fmt.Errorf("list %s: %w", t, ErrInjected)
		}
		n++
		return fn(fi)
	})
	if err != nil {
		return err
	}
	return fmt.Errorf("list %s: %w", t, ErrInjected)
}

// Remove may fail, before or after removing.
func (f *Faulty) Remove(ctx context.Context, h Handle) error {
	if err := f.before(ctx, "remove", h); err != nil {
		return err
	}
	if !f.chance(f.config().FailRate) {
		return f.be.Remove(ctx, h)
	}
	if f.intN(2) == 0 {
		if err := f.be.Remove(ctx, h); err != nil {
			return err
		}
	}
	return fmt.Errorf("remove %s: %w", h, ErrInjected)
}

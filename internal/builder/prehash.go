package builder

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"golang.org/x/sys/unix"
)

// Once a stage has missed the cache, every later step runs, and every
// later COPY or ADD from the build context needs the digests of its
// sources for its key. They are made ahead, while the steps before run
// (a RUN step keeps about one core busy: runc and the process), into the
// context's digest cache: when the COPY's turn comes its own walk finds
// each unchanged file's digest there by stat, as a rebuild finds those of
// the last build (hashcache.go), and reads only what changed since.

// prehash hashes the sources of a stage's later COPY/ADD steps in the
// background, one step at a time, in order.
type prehash struct {
	items map[instructions.Command]*prehashItem
	order []*prehashItem
	done  chan struct{} // closed when the goroutine has ended
}

type prehashItem struct {
	c       instructions.Command // a copy, not expanded by the step
	stop    chan struct{}        // closed when the step needs its sources
	threads idleThreads          // of the workers hashing it
	once    sync.Once
	done    chan struct{} // closed when the item is hashed or given up
}

// end tells the hashing of this item to stop, at normal priority so that
// its workers get to see it at once however busy the machine is.
func (it *prehashItem) end() {
	it.once.Do(func() {
		close(it.stop)
		it.threads.wake()
	})
}

// halt ends the hashing of this item (if it has begun) and waits until it
// has: what it hashed is in the cache.
func (it *prehashItem) halt() {
	it.end()
	<-it.done
}

// startPrehash starts hashing the sources of the COPY/ADD steps in cmds
// that read plain paths of the build context. Nil when there is none.
func (b *builder) startPrehash(ctx context.Context, sp *stagePlan, cmds []instructions.Command) *prehash {
	p := &prehash{items: map[instructions.Command]*prehashItem{}, done: make(chan struct{})}
	for _, c := range cmds {
		cc, ok := prehashable(c)
		if !ok {
			continue
		}
		it := &prehashItem{c: cc, stop: make(chan struct{}), done: make(chan struct{})}
		p.items[c] = it
		p.order = append(p.order, it)
	}
	if len(p.order) == 0 {
		return nil
	}
	workers := prehashWorkers()
	go func() {
		defer close(p.done)
		extraProc(workers)
		defer extraProc(-workers)
		for _, it := range p.order {
			select {
			case <-it.stop:
			case <-ctx.Done():
			default:
				pass := hashPass{workers: workers, stop: it.stop, ctx: ctx, crc: recordsCopy(it.c), idle: &it.threads}
				var sd instructions.SourcesAndDest
				switch c := it.c.(type) {
				case *instructions.CopyCommand:
					sd = c.SourcesAndDest
				case *instructions.AddCommand:
					sd = c.SourcesAndDest
				}
				// Errors are the step's to report when it selects
				// the same sources itself.
				if src, err := b.selectSourcesPass(ctx, sp, it.c, sd, "", nil, pass); err == nil {
					src.close()
				}
			}
			close(it.done)
		}
	}()
	return p
}

// wait makes the step of c wait for (and stop) the hashing of its sources.
func (p *prehash) wait(c instructions.Command) {
	if p == nil {
		return
	}
	if it, ok := p.items[c]; ok {
		it.halt()
	}
}

// stop ends the hashing and waits for it to end.
func (p *prehash) stop() {
	if p == nil {
		return
	}
	for _, it := range p.order {
		it.end()
	}
	<-p.done
}

// prehashWorkers leaves the other cores to the steps that run meanwhile.
func prehashWorkers() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// An idle worker's thread keeps its P (Go's right to run code, GOMAXPROCS
// of them) while the kernel leaves it waiting for a core, which it does
// whenever anything else wants one: the build's own goroutines would then
// wait for a P behind a thread that does not run. So the process gets one
// P more per idle worker for as long as they exist.
var procsMu sync.Mutex

func extraProc(n int) {
	procsMu.Lock()
	defer procsMu.Unlock()
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + n)
}

// prehashable returns a copy of c (which its step expands in place later)
// when c is a COPY or ADD of build context paths that need no expansion.
func prehashable(c instructions.Command) (instructions.Command, bool) {
	plain := func(words ...[]string) bool {
		for _, ws := range words {
			for _, w := range ws {
				if strings.ContainsAny(w, "$") || isRemote(w) {
					return false
				}
			}
		}
		return true
	}
	switch c := c.(type) {
	case *instructions.CopyCommand:
		if c.From != "" || len(c.SourceContents) > 0 || !plain(c.SourcePaths, c.ExcludePatterns) {
			return nil, false
		}
		cc := *c
		cc.SourcePaths, cc.ExcludePatterns = slices.Clone(c.SourcePaths), slices.Clone(c.ExcludePatterns)
		return &cc, true
	case *instructions.AddCommand:
		if len(c.SourceContents) > 0 || !plain(c.SourcePaths, c.ExcludePatterns) {
			return nil, false
		}
		cc := *c
		cc.SourcePaths, cc.ExcludePatterns = slices.Clone(c.SourcePaths), slices.Clone(c.ExcludePatterns)
		return &cc, true
	}
	return nil, false
}

// hashPass is how fileDigests runs: the zero value is a step's own pass
// (every core); a prehash runs on fewer workers and stops when told.
type hashPass struct {
	workers int
	stop    <-chan struct{}
	ctx     context.Context
	// crc: each file's tar-split checksum is summed too, for a copy
	// whose layer commit takes it instead of reading the file for it.
	crc bool
	// idle, when set, runs the workers only on cores nothing else wants.
	idle *idleThreads
}

// idleThreads are the threads of one pass's workers while they run at
// idle priority: each worker's goroutine is on an OS thread of its own that
// the kernel runs only when a core has nothing else to do (SCHED_IDLE,
// which a waking task preempts at once; nice 19 where that is refused):
// work done ahead must not slow the steps that run meanwhile (runc, the
// RUN's processes) or other work on the machine. With nice 19 a RUN
// step's runc took 0.16-0.25 s instead of 0.08 s on a busy machine. Each
// idle worker holds a P of its own (extraProc). When the pass is told to
// stop, wake puts them back at normal priority: on a busy machine an idle
// thread may otherwise not run for a long time, and the step that stopped
// it waits for it.
type idleThreads struct {
	mu    sync.Mutex
	tids  []int
	woken bool
}

// enter makes the calling goroutine's thread idle; the goroutine must end
// with the thread locked (Go then ends the thread instead of reusing it)
// and call leave with the result before it does.
func (t *idleThreads) enter() int {
	runtime.LockOSThread()
	t.mu.Lock()
	defer t.mu.Unlock()
	tid := unix.Gettid()
	if t.woken {
		return tid
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}
	if unix.SchedSetAttr(0, &attr, 0) != nil {
		unix.Setpriority(unix.PRIO_PROCESS, tid, 19)
	}
	t.tids = append(t.tids, tid)
	return tid
}

// leave forgets the thread tid, which ends with its goroutine: its number
// may then name another thread.
func (t *idleThreads) leave(tid int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tids = slices.DeleteFunc(t.tids, func(x int) bool { return x == tid })
}

// wake puts the threads back at normal priority, for good.
func (t *idleThreads) wake() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.woken = true
	for _, tid := range t.tids {
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}
		if unix.SchedSetAttr(tid, &attr, 0) != nil {
			unix.Setpriority(unix.PRIO_PROCESS, tid, 0)
		}
	}
	t.tids = nil
}

func (p hashPass) numWorkers() int {
	if p.workers > 0 {
		return p.workers
	}
	return copyWorkers()
}

// errStopped ends the hashing of a file when its pass is stopped.
var errStopped = errors.New("hashing stopped")

// stopped says whether the pass should hash no more files.
func (p hashPass) stopped() bool {
	if p.stop != nil {
		select {
		case <-p.stop:
			return true
		default:
		}
	}
	return p.ctx != nil && p.ctx.Err() != nil
}

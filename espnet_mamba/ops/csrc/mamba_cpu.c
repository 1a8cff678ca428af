/* Compiled CPU kernels behind espnet_mamba.ops (see ops/cpu_kernels.py, which
 * builds this file twice: -DREAL_IS_DOUBLE for fp64, without it for fp32).
 *
 *   scan_fwd   fused selective scan: softplus(delta + bias), exp(delta A),
 *              h = exp(delta A) h + delta B u, y = C.h + D u, y *= silu(z);
 *              optional initial state, last state, and chunk checkpoints of h
 *              for the backward (never an (L, D, N) tensor)
 *   scan_bwd   its gradient: recomputes each chunk's states from its
 *              checkpoint, then one reverse pass
 *   state_step one token of the recurrence (beam search), in place
 *   conv_fwd, conv_bwd, conv_step   depthwise causal conv1d (+ silu)
 *
 * Work is split over blocks of LANES channels of one utterance, computed side
 * by side in vectors (see `block`). Threads: PyTorch's OpenMP pool when
 * registered (use_openmp_pool), else threads started and joined by each call;
 * the caller chooses the count (torch.get_num_threads()). Gradients that sum over
 * work units of several threads (A, B, C, D, bias, conv weight) go to one private
 * buffer per thread; the caller adds them up.
 *
 * Loops over the lanes carry `#pragma omp simd` (compiled with -fopenmp-simd:
 * vector code, no OpenMP runtime). exp() of the decay is our own range-reduced
 * polynomial, which the compiler vectorises; libm's expf would be one scalar
 * call per state element.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int64_t i64;

#ifdef REAL_IS_DOUBLE
typedef double real;
typedef int64_t ibits;
#else
typedef float real;
typedef int32_t ibits;
#endif

/* same floor as selective_scan_torch.LOG_DECAY_FLOOR: decays below exp(-60)
 * are numerically zero and would otherwise make denormals (slow on x86) */
#define LOG_DECAY_FLOOR ((real)-60.0)
#define MAX_CHUNK 64
#define MAX_STATE 256 /* d_state */
#define LANES 16      /* channels computed side by side in one vector */
#define PREFETCH_AHEAD 8 /* steps */
#define MAX_THREADS 256

/* exp(x), x clamped to the normal range: x = k ln2 + r with |r| <= ln2/2, exp(r) by its
 * Taylor polynomial (error about one unit in the last place), 2^k from the
 * exponent bits. Branch-free, so a loop over it vectorises. */
static inline real vexp(real x) {
#ifdef REAL_IS_DOUBLE
  const real round_magic = 6755399441055744.0; /* 1.5 * 2^52 */
  const real ln2_hi = 6.93145751953125e-1, ln2_lo = 1.42860682030941723212e-6;
  x = x < 700.0 ? x : 700.0; /* two min/max-shaped clamps: vminpd/vmaxpd, no masks */
  x = x > -700.0 ? x : -700.0;
  real k = (x * 1.4426950408889634 + round_magic) - round_magic;
  real r = (x - k * ln2_hi) - k * ln2_lo;
  real p = 1.0 / 6227020800.0;
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  ibits bits = ((ibits)k + 1023) << 52;
#else
  const real round_magic = 12582912.0f; /* 1.5 * 2^23 */
  const real ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  x = x < 88.0f ? x : 88.0f; /* two min/max-shaped clamps: vminps/vmaxps, no masks */
  x = x > -87.0f ? x : -87.0f;
  real k = (x * 1.44269504f + round_magic) - round_magic;
  real r = (x - k * ln2_hi) - k * ln2_lo;
  real p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  ibits bits = ((ibits)k + 127) << 23;
#endif
  real scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/* log(w) for w in [1, 2]: w = 2^k m with m in [1, sqrt 2), then
 * log(m) = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.172, by its odd series. */
static inline real vlog_1_2(real w) {
  const int big = w > (real)1.41421356237309505;
  const real m = big ? w * (real)0.5 : w;
  const real s = (m - 1) / (m + 1), s2 = s * s;
#ifdef REAL_IS_DOUBLE
  real p = 2.0 / 21;
  p = p * s2 + 2.0 / 19;
  p = p * s2 + 2.0 / 17;
  p = p * s2 + 2.0 / 15;
  p = p * s2 + 2.0 / 13;
  p = p * s2 + 2.0 / 11;
#else
  real p = 2.0f / 11;
#endif
  p = p * s2 + (real)(2.0 / 9);
  p = p * s2 + (real)(2.0 / 7);
  p = p * s2 + (real)(2.0 / 5);
  p = p * s2 + (real)(2.0 / 3);
  p = p * s2 + 2;
  return (big ? (real)0.693147180559945309 : 0) + p * s;
}

/* torch.nn.functional.softplus (threshold 20) as max(x, 0) + log1p(exp(-|x|)),
 * log1p(e) = log(1+e) * e / ((1+e) - 1) to keep its accuracy for tiny e. */
static inline real vsoftplus(real x) {
  const real e = vexp(x < 0 ? x : -x), w = 1 + e;
  const real l1p = w == 1 ? e : vlog_1_2(w) * e / (w - 1);
  return x > 20 ? x : (x > 0 ? x : 0) + l1p;
}

static inline real vsigmoid(real x) { return 1 / (1 + vexp(-x)); }

/* ---------------------------------------------------------------- threads */

typedef void (*unit_fn)(const void *args, i64 begin, i64 end, int thread);

typedef struct {
  unit_fn fn;
  const void *args;
  i64 begin, end;
  int thread;
} job;

static void *run_job(void *p) {
  job *j = (job *)p;
  j->fn(j->args, j->begin, j->end, j->thread);
  return NULL;
}

/* PyTorch's OpenMP pool, when the caller handed us its GOMP_parallel: after each
 * PyTorch op its worker threads spin for milliseconds waiting for the next one, so
 * threads of our own would share the cores with spinning ones (measured: two
 * threads of ours then ran ~1.1x one). Running on that pool uses the threads that
 * are already awake. libgomp's pool does not survive fork (a child that enters it
 * hangs), so the pool is used only in the process that registered it; a forked
 * child (DataLoader workers) falls back to threads of its own. */
typedef void (*omp_parallel_fn)(void (*)(void *), void *, unsigned, unsigned);
static omp_parallel_fn omp_parallel = NULL;
static pid_t omp_owner = 0;

void use_openmp_pool(void *gomp_parallel) {
  omp_parallel = (omp_parallel_fn)gomp_parallel;
  omp_owner = getpid();
}

typedef struct {
  job *jobs;
  int count, next;
} job_queue;

/* every thread of the team takes jobs until none is left: correct whatever
 * team size the runtime gives (fewer threads when nested or busy) */
static void drain_queue(void *p) {
  job_queue *q = (job_queue *)p;
  for (int t; (t = __atomic_fetch_add(&q->next, 1, __ATOMIC_RELAXED)) < q->count;)
    run_job(&q->jobs[t]);
}

/* work units [0, units) in `threads` contiguous ranges; the caller's thread takes one */
static void parallel_units(unit_fn fn, const void *args, i64 units, int threads) {
  job jobs[MAX_THREADS];
  pthread_t ids[MAX_THREADS];
  int started[MAX_THREADS];
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  if (threads > units) threads = (int)units;
  if (threads < 1) threads = 1;
  for (int t = 0; t < threads; t++) {
    jobs[t] = (job){fn, args, units * t / threads, units * (t + 1) / threads, t};
    started[t] = 0;
  }
  if (threads > 1 && omp_parallel && getpid() == omp_owner) {
    job_queue q = {jobs, threads, 0};
    omp_parallel(drain_queue, &q, (unsigned)threads, 0);
    return;
  }
  for (int t = 1; t < threads; t++)
    started[t] = pthread_create(&ids[t], NULL, run_job, &jobs[t]) == 0;
  run_job(&jobs[0]);
  for (int t = 1; t < threads; t++) {
    if (started[t])
      pthread_join(ids[t], NULL);
    else
      run_job(&jobs[t]); /* could not start a thread: do its units here */
  }
}

/* ------------------------------------------------------------------- scan */

/* Strides are in elements. u, delta, z, y, grad_y, grad_u, grad_delta, grad_z:
 * (batch, dim, len) with strides [b, d, t] (fastest when d's stride is 1, as
 * in Mamba). B and C: time-varying (batch, groups, len, n) with strides
 * [b, g, t] and unit stride over n, or time-invariant (dim, n) contiguous.
 * A (dim, n), h0/last/grad_last/grad_h0 (batch, dim, n) and checkpoints
 * (batch, dim, n_chunks, n): contiguous. chunk <= MAX_CHUNK.
 *
 * Per-thread gradient buffers: grad_A (dim, n), grad_D and grad_bias (dim);
 * grad_B/grad_C (batch, groups, len, n, LANES) when time-varying (the LANES
 * channel lanes are summed by the caller: no horizontal sums in the loop),
 * (dim, n) when time-invariant. */
typedef struct {
  const real *u, *delta, *A, *B, *C, *D, *z, *delta_bias, *h0;
  real *y, *last, *ckpt;
  /* backward only */
  const real *grad_y, *grad_last;
  real *grad_u, *grad_delta, *grad_z, *grad_h0;
  real *grad_A, *grad_B, *grad_C, *grad_D, *grad_bias;
  i64 batch, dim, len, nstate, groups, chunk, softplus, B_varies, C_varies;
  i64 s_u[3], s_delta[3], s_z[3], s_y[3], s_B[3], s_C[3];
  i64 s_gy[3], s_gu[3], s_gdelta[3], s_gz[3];
} scan_args;

/* The work unit: LANES neighbouring channels of one group of one utterance,
 * computed side by side in one vector (lane j = channel d0 + j). The state
 * h[n] of LANES channels is one vector, so the update, exp(delta A) included,
 * runs LANES channels per instruction and C.h needs no horizontal sum. */
typedef struct {
  i64 b, g, d0, w; /* w <= LANES real lanes; the rest compute on zeros and are not stored */
} block;

static inline i64 blocks_per_group(const scan_args *a) {
  return (a->dim / a->groups + LANES - 1) / LANES;
}

static inline block block_of(const scan_args *a, i64 index) {
  const i64 per_group = a->dim / a->groups, nb = blocks_per_group(a);
  block k;
  k.b = index / (a->groups * nb);
  k.g = (index / nb) % a->groups;
  const i64 first = (index % nb) * LANES;
  k.d0 = k.g * per_group + first;
  k.w = per_group - first < LANES ? per_group - first : LANES;
  return k;
}

/* A, and B/C when time-invariant, as [n][lane]; D and bias per lane */
typedef struct {
  real A[MAX_STATE][LANES], B[MAX_STATE][LANES], C[MAX_STATE][LANES];
  real D[LANES], bias[LANES];
  real B_step[MAX_STATE][LANES], C_step[MAX_STATE][LANES]; /* scratch: one step's B, C */
} block_consts;

static void load_consts(const scan_args *a, const block *k, block_consts *c) {
  const i64 N = a->nstate;
  for (i64 n = 0; n < N; n++)
    for (i64 j = 0; j < LANES; j++) {
      const int ok = j < k->w;
      const i64 d = k->d0 + j;
      c->A[n][j] = ok ? a->A[d * N + n] : 0;
      c->B[n][j] = ok && !a->B_varies ? a->B[d * N + n] : 0;
      c->C[n][j] = ok && !a->C_varies ? a->C[d * N + n] : 0;
    }
  for (i64 j = 0; j < LANES; j++) {
    const int ok = j < k->w;
    c->D[j] = ok && a->D ? a->D[k->d0 + j] : 0;
    c->bias[j] = ok && a->delta_bias ? a->delta_bias[k->d0 + j] : 0;
  }
}

/* one step's per-channel scalars */
typedef struct {
  real u[LANES], dt[LANES], raw_sig[LANES], z[LANES], z_sig[LANES], gate[LANES];
} lane_step;

/* LANES values of channels d0.. at one step, zeros past the block's w channels */
static inline void load_lanes(real *dst, const real *src, i64 stride, i64 w) {
  if (w == LANES && stride == 1) {
    memcpy(dst, src, sizeof(real) * LANES);
    return;
  }
  for (i64 j = 0; j < LANES; j++) dst[j] = j < w ? src[j * stride] : 0;
}

/* A block walks time with a stride of a whole (batch, L, D) row per step: the
 * hardware prefetcher does not follow it, and each step would wait for memory. */
static inline void prefetch_step(const scan_args *a, const block *k, i64 t) {
  if (t >= a->len) return;
  __builtin_prefetch(a->u + k->b * a->s_u[0] + k->d0 * a->s_u[1] + t * a->s_u[2]);
  __builtin_prefetch(a->delta + k->b * a->s_delta[0] + k->d0 * a->s_delta[1] + t * a->s_delta[2]);
  if (a->z) __builtin_prefetch(a->z + k->b * a->s_z[0] + k->d0 * a->s_z[1] + t * a->s_z[2]);
  if (a->B_varies) __builtin_prefetch(a->B + k->b * a->s_B[0] + k->g * a->s_B[1] + t * a->s_B[2]);
  if (a->C_varies) __builtin_prefetch(a->C + k->b * a->s_C[0] + k->g * a->s_C[1] + t * a->s_C[2]);
  if (a->y) __builtin_prefetch(a->y + k->b * a->s_y[0] + k->d0 * a->s_y[1] + t * a->s_y[2], 1);
  if (a->grad_y)
    __builtin_prefetch(a->grad_y + k->b * a->s_gy[0] + k->d0 * a->s_gy[1] + t * a->s_gy[2]);
}

/* sigmoid(z) and silu(z) of one step's lanes. A function of its own, with restrict
 * pointers: inlined into load_step's loop gcc 12 left it scalar (one vdivss per lane,
 * a third of the forward's time outside the state update) */
__attribute__((noinline)) static void silu_lanes(const real *restrict z, real *restrict sig, real *restrict out) {
#pragma omp simd
  for (i64 j = 0; j < LANES; j++) {
    sig[j] = vsigmoid(z[j]);
    out[j] = z[j] * sig[j];
  }
}

/* raw_sig (d softplus / d raw delta) only when `for_backward` */
static inline void load_step(const scan_args *a, const block *k, const block_consts *c, i64 t,
                             int for_backward, lane_step *st) {
  load_lanes(st->u, a->u + k->b * a->s_u[0] + k->d0 * a->s_u[1] + t * a->s_u[2], a->s_u[1], k->w);
  load_lanes(st->dt, a->delta + k->b * a->s_delta[0] + k->d0 * a->s_delta[1] + t * a->s_delta[2],
             a->s_delta[1], k->w);
  if (a->softplus) {
#pragma omp simd
    for (i64 j = 0; j < LANES; j++) {
      const real raw = st->dt[j] + c->bias[j];
      if (for_backward) st->raw_sig[j] = raw > 20 ? 1 : vsigmoid(raw);
      st->dt[j] = vsoftplus(raw);
    }
  } else {
    for (i64 j = 0; j < LANES; j++) {
      st->dt[j] += c->bias[j];
      st->raw_sig[j] = 1;
    }
  }
  if (a->z) {
    load_lanes(st->z, a->z + k->b * a->s_z[0] + k->d0 * a->s_z[1] + t * a->s_z[2], a->s_z[1], k->w);
    silu_lanes(st->z, st->z_sig, st->gate);
  } else {
    for (i64 j = 0; j < LANES; j++) st->gate[j] = 1;
  }
}

/* B or C of step t as [n] -> value for all lanes: a pointer to (n) scalars when
 * time-varying, NULL when time-invariant (then block_consts has them per lane) */
static inline const real *bc_step(const real *m, int varies, const i64 *s, const block *k, i64 t) {
  return varies ? m + k->b * s[0] + k->g * s[1] + t * s[2] : NULL;
}

/* h[n] = exp(dt A[n]) h_prev[n] + dt u B[n] for every state n and lane, the
 * decays kept for the backward; C.h per lane into `out`. The fast path, Mamba's:
 * B and C vary in time, one scalar per state shared by the block's lanes. */
static inline void update_shared_bc(i64 N, const block_consts *restrict c, const real *restrict Bt,
                                    const real *restrict Ct, const lane_step *restrict st,
                                    const real (*restrict h_prev)[LANES],
                                    real (*restrict h)[LANES], real (*restrict decay)[LANES],
                                    real *restrict out) {
  real acc[LANES] = {0}, du[LANES];
  for (i64 j = 0; j < LANES; j++) du[j] = st->dt[j] * st->u[j];
  for (i64 n = 0; n < N; n++) {
    const real bs = Bt[n], cs = Ct[n];
#pragma omp simd
    for (i64 j = 0; j < LANES; j++) {
      real x = st->dt[j] * c->A[n][j];
      x = x > LOG_DECAY_FLOOR ? x : LOG_DECAY_FLOOR;
      decay[n][j] = vexp(x);
      h[n][j] = decay[n][j] * h_prev[n][j] + du[j] * bs;
      acc[j] += h[n][j] * cs;
    }
  }
  memcpy(out, acc, sizeof acc);
}

/* the same with B and C given per lane ([n][lane]: time-invariant ones) */
static inline void update_lane_bc(i64 N, const block_consts *restrict c,
                                  const real (*restrict B)[LANES], const real (*restrict C)[LANES],
                                  const lane_step *restrict st, const real (*restrict h_prev)[LANES],
                                  real (*restrict h)[LANES], real (*restrict decay)[LANES],
                                  real *restrict out) {
  real acc[LANES] = {0}, du[LANES];
  for (i64 j = 0; j < LANES; j++) du[j] = st->dt[j] * st->u[j];
  for (i64 n = 0; n < N; n++) {
#pragma omp simd
    for (i64 j = 0; j < LANES; j++) {
      real x = st->dt[j] * c->A[n][j];
      x = x > LOG_DECAY_FLOOR ? x : LOG_DECAY_FLOOR;
      decay[n][j] = vexp(x);
      h[n][j] = decay[n][j] * h_prev[n][j] + du[j] * B[n][j];
      acc[j] += h[n][j] * C[n][j];
    }
  }
  memcpy(out, acc, sizeof acc);
}

/* step t of block k: h from h_prev (distinct arrays), decays, C.h per lane */
static void state_update(const scan_args *a, const block *k, block_consts *c, i64 t,
                         const lane_step *st, const real (*h_prev)[LANES], real (*h)[LANES],
                         real (*decay)[LANES], real *out) {
  const i64 N = a->nstate;
  const real *Bt = bc_step(a->B, a->B_varies, a->s_B, k, t);
  const real *Ct = bc_step(a->C, a->C_varies, a->s_C, k, t);
  if (Bt && Ct) {
    update_shared_bc(N, c, Bt, Ct, st, h_prev, h, decay, out);
    return;
  }
  for (i64 n = 0; n < N; n++) /* spread a time-varying one over the lanes */
    for (i64 j = 0; j < LANES; j++) {
      c->B_step[n][j] = Bt ? Bt[n] : c->B[n][j];
      c->C_step[n][j] = Ct ? Ct[n] : c->C[n][j];
    }
  update_lane_bc(N, c, (const real(*)[LANES])c->B_step, (const real(*)[LANES])c->C_step, st,
                 h_prev, h, decay, out);
}

static void store_lanes(real *dst, i64 stride, const real *v, i64 w) {
  for (i64 j = 0; j < w; j++) dst[j * stride] = v[j];
}

static void scan_fwd_blocks(const void *p, i64 k0, i64 k1, int thread) {
  const scan_args *a = (const scan_args *)p;
  const i64 N = a->nstate, L = a->len, K = a->chunk, n_chunks = (L + K - 1) / K;
  block_consts *c = malloc(sizeof(block_consts));
  /* two states used in turn (the update reads one, writes the other) and the decays;
   * [N], not [MAX_STATE]: see scan_bwd_blocks */
  real(*buf)[N][LANES] = malloc(sizeof(real) * 3 * N * LANES);
  lane_step st;
  real out[LANES];
  (void)thread;
  for (i64 index = k0; index < k1; index++) {
    const block k = block_of(a, index);
    real(*h)[LANES] = buf[0], (*h_next)[LANES] = buf[1], (*decay)[LANES] = buf[2];
    load_consts(a, &k, c);
    for (i64 n = 0; n < N; n++)
      for (i64 j = 0; j < LANES; j++)
        h[n][j] = a->h0 && j < k.w ? a->h0[(k.b * a->dim + k.d0 + j) * N + n] : 0;
    real *y = a->y + k.b * a->s_y[0] + k.d0 * a->s_y[1];
    for (i64 t = 0; t < L; t++) {
      if (a->ckpt && t % K == 0)
        for (i64 j = 0; j < k.w; j++)
          for (i64 n = 0; n < N; n++)
            a->ckpt[((k.b * a->dim + k.d0 + j) * n_chunks + t / K) * N + n] = h[n][j];
      prefetch_step(a, &k, t + PREFETCH_AHEAD);
      load_step(a, &k, c, t, 0, &st);
      state_update(a, &k, c, t, &st, (const real(*)[LANES])h, h_next, decay, out);
      real(*swap)[LANES] = h;
      h = h_next;
      h_next = swap;
#pragma omp simd
      for (i64 j = 0; j < LANES; j++) out[j] = (out[j] + c->D[j] * st.u[j]) * st.gate[j];
      store_lanes(y + t * a->s_y[2], a->s_y[1], out, k.w);
    }
    if (a->last)
      for (i64 j = 0; j < k.w; j++)
        for (i64 n = 0; n < N; n++) a->last[(k.b * a->dim + k.d0 + j) * N + n] = h[n][j];
  }
  free(c);
  free(buf);
}

static void scan_bwd_blocks(const void *p, i64 k0, i64 k1, int thread) {
  const scan_args *a = (const scan_args *)p;
  const i64 N = a->nstate, L = a->len, Dm = a->dim, G = a->groups;
  const i64 K = a->chunk, n_chunks = (L + K - 1) / K;
  real *gA_all = a->grad_A + (i64)thread * Dm * N;
  real *gD_all = a->grad_D + (i64)thread * Dm;
  real *gbias_all = a->grad_bias + (i64)thread * Dm;
  const i64 B_size = a->B_varies ? a->batch * G * L * N * LANES : Dm * N;
  const i64 C_size = a->C_varies ? a->batch * G * L * N * LANES : Dm * N;
  real *gB_all = a->grad_B + (i64)thread * B_size;
  real *gC_all = a->grad_C + (i64)thread * C_size;
  block_consts *c = malloc(sizeof(block_consts));
  /* the chunk's states h[t] (and h[s-1] in front), decays and step scalars. Steps [N]
   * apart, not [MAX_STATE]: 16 KB apart, every step's slab fell in the same L1 sets, and
   * the reverse pass waited on conflict misses (a third of the backward's time) */
  real(*states)[N][LANES] = malloc(sizeof(real) * (MAX_CHUNK + 1) * N * LANES);
  real(*decays)[N][LANES] = malloc(sizeof(real) * MAX_CHUNK * N * LANES);
  lane_step *steps = malloc(sizeof(lane_step) * MAX_CHUNK);
  real(*ys)[LANES] = malloc(sizeof(real) * MAX_CHUNK * LANES); /* y before the gate */
  real(*gh)[LANES] = malloc(sizeof(real) * MAX_STATE * LANES); /* dLoss/dh, running back */
  real(*gA)[LANES] = malloc(sizeof(real) * MAX_STATE * LANES);
  real(*gB_inv)[LANES] = malloc(sizeof(real) * MAX_STATE * LANES);
  real(*gC_inv)[LANES] = malloc(sizeof(real) * MAX_STATE * LANES);
  for (i64 index = k0; index < k1; index++) {
    const block k = block_of(a, index);
    load_consts(a, &k, c);
    real gD[LANES] = {0}, gbias[LANES] = {0};
    for (i64 n = 0; n < N; n++)
      for (i64 j = 0; j < LANES; j++) {
        gh[n][j] = a->grad_last && j < k.w ? a->grad_last[(k.b * Dm + k.d0 + j) * N + n] : 0;
        gA[n][j] = gB_inv[n][j] = gC_inv[n][j] = 0;
      }
    const i64 row0 = k.b * Dm + k.d0; /* (b, d0) as a row of (batch, dim) */
    for (i64 ch = n_chunks - 1; ch >= 0; ch--) {
      const i64 s = ch * K, len = s + K < L ? K : L - s;
      for (i64 n = 0; n < N; n++)
        for (i64 j = 0; j < LANES; j++)
          states[0][n][j] = j < k.w ? a->ckpt[((row0 + j) * n_chunks + ch) * N + n] : 0;
      for (i64 i = 0; i < len; i++) { /* the chunk's states again, from its checkpoint */
        const i64 t = s + i;
        prefetch_step(a, &k, t + PREFETCH_AHEAD);
        load_step(a, &k, c, t, 1, &steps[i]);
        state_update(a, &k, c, t, &steps[i], (const real(*)[LANES])states[i], states[i + 1],
                     decays[i], ys[i]);
        for (i64 j = 0; j < LANES; j++) ys[i][j] += c->D[j] * steps[i].u[j];
      }
      for (i64 i = len - 1; i >= 0; i--) {
        const i64 t = s + i;
        const lane_step *st = &steps[i];
        const real *Bt = bc_step(a->B, a->B_varies, a->s_B, &k, t);
        const real *Ct = bc_step(a->C, a->C_varies, a->s_C, &k, t);
        real *gBt = a->B_varies ? gB_all + (((k.b * G + k.g) * L + t) * N) * LANES : NULL;
        real *gCt = a->C_varies ? gC_all + (((k.b * G + k.g) * L + t) * N) * LANES : NULL;
        const real *gout = a->grad_y + k.b * a->s_gy[0] + k.d0 * a->s_gy[1] + t * a->s_gy[2];
        real gy[LANES], du[LANES], sumA[LANES] = {0}, sumB[LANES] = {0}, tmp[LANES];
        for (i64 j = 0; j < LANES; j++) gy[j] = j < k.w ? gout[j * a->s_gy[1]] : 0;
        if (a->z) { /* out = y * z * sigmoid(z) */
#pragma omp simd
          for (i64 j = 0; j < LANES; j++) {
            const real sg = st->z_sig[j];
            tmp[j] = gy[j] * ys[i][j] * sg * (1 + st->z[j] * (1 - sg));
          }
          store_lanes(a->grad_z + k.b * a->s_gz[0] + k.d0 * a->s_gz[1] + t * a->s_gz[2],
                      a->s_gz[1], tmp, k.w);
        }
#pragma omp simd
        for (i64 j = 0; j < LANES; j++) {
          gy[j] *= st->gate[j];
          du[j] = st->dt[j] * st->u[j];
          gD[j] += gy[j] * st->u[j];
        }
        for (i64 n = 0; n < N; n++) {
          const real bs = Bt ? Bt[n] : 0, cs = Ct ? Ct[n] : 0;
          /* time-varying: into this step's lane buffer; time-invariant: summed in gB_inv.
           * Chosen here, not in the lane loop, where gcc made both masked stores (vmaskmovps:
           * no store forwarding, ~40 % of the backward) */
          real *restrict gBn = gBt ? gBt + n * LANES : gB_inv[n];
          real *restrict gCn = gCt ? gCt + n * LANES : gC_inv[n];
          real b_lanes[LANES], c_lanes[LANES]; /* B[n], C[n] per lane, either kind */
          for (i64 j = 0; j < LANES; j++) {
            b_lanes[j] = Bt ? bs : c->B[n][j];
            c_lanes[j] = Ct ? cs : c->C[n][j];
          }
#pragma omp simd
          for (i64 j = 0; j < LANES; j++) {
            const real bj = b_lanes[j], cj = c_lanes[j];
            const real ghn = gh[n][j] + gy[j] * cj;
            const real dec = decays[i][n][j], x = st->dt[j] * c->A[n][j];
            /* d/d(delta A) of exp(delta A) h[t-1]; a floored decay passes nothing
             * (computed, then selected: a conditional load would be a masked one) */
            const real through = ghn * dec * states[i][n][j];
            const real glog = x < LOG_DECAY_FLOOR ? 0 : through;
            sumA[j] += glog * c->A[n][j];
            gA[n][j] += glog * st->dt[j];
            sumB[j] += ghn * bj;
            gBn[j] += ghn * du[j];
            gCn[j] += gy[j] * states[i + 1][n][j];
            gh[n][j] = ghn * dec; /* carried to step t-1 */
          }
        }
#pragma omp simd
        for (i64 j = 0; j < LANES; j++) {
          tmp[j] = gy[j] * c->D[j] + st->dt[j] * sumB[j];                  /* grad u */
          sumA[j] = (sumA[j] + sumB[j] * st->u[j]) * st->raw_sig[j];      /* grad raw delta */
          gbias[j] += sumA[j];
        }
        store_lanes(a->grad_u + k.b * a->s_gu[0] + k.d0 * a->s_gu[1] + t * a->s_gu[2],
                    a->s_gu[1], tmp, k.w);
        store_lanes(a->grad_delta + k.b * a->s_gdelta[0] + k.d0 * a->s_gdelta[1]
                    + t * a->s_gdelta[2], a->s_gdelta[1], sumA, k.w);
      }
    }
    for (i64 j = 0; j < k.w; j++) {
      for (i64 n = 0; n < N; n++) {
        if (a->grad_h0) a->grad_h0[(row0 + j) * N + n] = gh[n][j];
        gA_all[(k.d0 + j) * N + n] += gA[n][j];
        if (!a->B_varies) gB_all[(k.d0 + j) * N + n] += gB_inv[n][j];
        if (!a->C_varies) gC_all[(k.d0 + j) * N + n] += gC_inv[n][j];
      }
      gD_all[k.d0 + j] += gD[j];
      gbias_all[k.d0 + j] += gbias[j];
    }
  }
  free(c);
  free(states);
  free(decays);
  free(steps);
  free(ys);
  free(gh);
  free(gA);
  free(gB_inv);
  free(gC_inv);
}

static i64 n_blocks(const scan_args *a) { return a->batch * a->groups * blocks_per_group(a); }

void scan_fwd(const scan_args *a, int threads) {
  parallel_units(scan_fwd_blocks, a, n_blocks(a), threads);
}

void scan_bwd(const scan_args *a, int threads) {
  parallel_units(scan_bwd_blocks, a, n_blocks(a), threads);
}

/* One token. state (batch, dim, n) contiguous, updated in place. u, delta, z,
 * y: (batch, dim) with row stride s_*[0] and unit stride over dim. B, C:
 * (batch, n) with row stride s_*[0], unit stride over n. */
typedef struct {
  real *state;
  const real *u, *delta, *A, *B, *C, *D, *z, *delta_bias;
  real *y;
  i64 batch, dim, nstate, softplus;
  i64 s_u, s_delta, s_z, s_y, s_B, s_C;
} step_args;

static void state_step_blocks(const void *p, i64 k0, i64 k1, int thread) {
  const step_args *s = (const step_args *)p;
  const i64 N = s->nstate, Dm = s->dim;
  /* the step as a one-step scan of the same blocks (one group, time-varying B/C) */
  scan_args a;
  memset(&a, 0, sizeof a);
  a.u = s->u, a.delta = s->delta, a.A = s->A, a.B = s->B, a.C = s->C, a.D = s->D, a.z = s->z;
  a.delta_bias = s->delta_bias;
  a.batch = s->batch, a.dim = Dm, a.len = 1, a.nstate = N, a.groups = 1, a.chunk = 1;
  a.softplus = s->softplus, a.B_varies = 1, a.C_varies = 1;
  a.s_u[0] = s->s_u, a.s_u[1] = 1, a.s_delta[0] = s->s_delta, a.s_delta[1] = 1;
  a.s_z[0] = s->s_z, a.s_z[1] = 1, a.s_B[0] = s->s_B, a.s_C[0] = s->s_C;
  block_consts *c = malloc(sizeof(block_consts));
  real(*buf)[N][LANES] = malloc(sizeof(real) * 3 * N * LANES);
  real(*h)[LANES] = buf[0], (*h_next)[LANES] = buf[1], (*decay)[LANES] = buf[2];
  lane_step st;
  real out[LANES];
  (void)thread;
  for (i64 index = k0; index < k1; index++) {
    const block k = block_of(&a, index);
    real *state = s->state + (k.b * Dm + k.d0) * N;
    load_consts(&a, &k, c);
    for (i64 n = 0; n < N; n++)
      for (i64 j = 0; j < LANES; j++) h[n][j] = j < k.w ? state[j * N + n] : 0;
    load_step(&a, &k, c, 0, 0, &st);
    state_update(&a, &k, c, 0, &st, (const real(*)[LANES])h, h_next, decay, out);
    for (i64 j = 0; j < k.w; j++) {
      for (i64 n = 0; n < N; n++) state[j * N + n] = h_next[n][j];
      s->y[k.b * s->s_y + k.d0 + j] = (out[j] + c->D[j] * st.u[j]) * st.gate[j];
    }
  }
  free(c);
  free(buf);
}

void state_step(const step_args *s, int threads) {
  const i64 blocks = s->batch * ((s->dim + LANES - 1) / LANES);
  parallel_units(state_step_blocks, s, blocks, threads);
}

/* ------------------------------------------------------------------- conv */

/* x, y, grad_y, grad_x: (batch, dim, len) with strides [b, d, t]; weight
 * (dim, width), initial_state and grad_initial (batch, dim, width-1),
 * contiguous. y[t] = bias + sum_k w[k] x[t - (width-1) + k], x before t=0
 * read from initial_state (zeros if NULL). */
typedef struct {
  const real *x, *weight, *bias, *initial;
  real *y;
  const real *grad_y;
  real *grad_x, *grad_weight, *grad_bias, *grad_initial; /* weight/bias: per thread */
  i64 batch, dim, len, width, silu;
  i64 s_x[3], s_y[3], s_gy[3], s_gx[3];
} conv_args;

/* Blocks of LANES channels of one utterance, as in the scan: the loops run over
 * lanes (channels), so a channel-last x is read one vector per step. */
static inline i64 conv_blocks_per_row(const conv_args *a) { return (a->dim + LANES - 1) / LANES; }

/* the weights as [tap][lane] and the bias per lane of block (b, d0, w) */
static void conv_consts(const conv_args *a, i64 d0, i64 w, real (*wl)[LANES], real *bias) {
  for (i64 k = 0; k < a->width; k++)
    for (i64 j = 0; j < LANES; j++) wl[k][j] = j < w ? a->weight[(d0 + j) * a->width + k] : 0;
  for (i64 j = 0; j < LANES; j++) bias[j] = j < w && a->bias ? a->bias[d0 + j] : 0;
}

/* window[k] = input at padded position p - (width-1) + k, k < width, after shifting
 * in position p (p < width-1 reads the initial state) */
static inline void conv_shift_in(const conv_args *a, i64 b, i64 d0, i64 w, i64 p,
                                 real (*window)[LANES]) {
  const i64 W = a->width;
  memmove(window[0], window[1], sizeof(real) * LANES * (W - 1));
  if (p >= W - 1) {
    load_lanes(window[W - 1], a->x + b * a->s_x[0] + d0 * a->s_x[1] + (p - (W - 1)) * a->s_x[2],
               a->s_x[1], w);
  } else {
    for (i64 j = 0; j < LANES; j++)
      window[W - 1][j] = j < w && a->initial ? a->initial[(b * a->dim + d0 + j) * (W - 1) + p] : 0;
  }
}

/* pre-activation of step t, whose inputs fill window[0..W) */
static inline void conv_pre(i64 W, const real (*wl)[LANES], const real *bias,
                            const real (*window)[LANES], real *pre) {
  real acc[LANES];
  memcpy(acc, bias, sizeof acc);
  for (i64 k = 0; k < W; k++)
#pragma omp simd
    for (i64 j = 0; j < LANES; j++) acc[j] += wl[k][j] * window[k][j];
  memcpy(pre, acc, sizeof acc);
}

static void conv_fwd_blocks(const void *p, i64 k0, i64 k1, int thread) {
  const conv_args *a = (const conv_args *)p;
  const i64 W = a->width, nb = conv_blocks_per_row(a);
  real(*wl)[LANES] = malloc(sizeof(real) * LANES * W);
  real(*window)[LANES] = malloc(sizeof(real) * LANES * W);
  real bias[LANES], out[LANES];
  (void)thread;
  for (i64 index = k0; index < k1; index++) {
    const i64 b = index / nb, d0 = (index % nb) * LANES;
    const i64 w = a->dim - d0 < LANES ? a->dim - d0 : LANES;
    conv_consts(a, d0, w, wl, bias);
    memset(window, 0, sizeof(real) * LANES * W);
    for (i64 q = 0; q < W - 1; q++) conv_shift_in(a, b, d0, w, q, window);
    for (i64 t = 0; t < a->len; t++) {
      conv_shift_in(a, b, d0, w, t + W - 1, window);
      conv_pre(W, (const real(*)[LANES])wl, bias, (const real(*)[LANES])window, out);
      if (a->silu)
#pragma omp simd
        for (i64 j = 0; j < LANES; j++) out[j] *= vsigmoid(out[j]);
      store_lanes(a->y + b * a->s_y[0] + d0 * a->s_y[1] + t * a->s_y[2], a->s_y[1], out, w);
    }
  }
  free(wl);
  free(window);
}

static void conv_bwd_blocks(const void *p, i64 k0, i64 k1, int thread) {
  const conv_args *a = (const conv_args *)p;
  const i64 W = a->width, L = a->len, nb = conv_blocks_per_row(a);
  real *gw_all = a->grad_weight + (i64)thread * a->dim * W;
  real *gb_all = a->grad_bias ? a->grad_bias + (i64)thread * a->dim : NULL;
  real(*wl)[LANES] = malloc(sizeof(real) * LANES * W);
  real(*window)[LANES] = malloc(sizeof(real) * LANES * W);
  real(*gw)[LANES] = malloc(sizeof(real) * LANES * W);
  real(*gpre)[LANES] = malloc(sizeof(real) * LANES * (L > 0 ? L : 1)); /* dLoss/d pre-activation */
  real bias[LANES], gb[LANES], pre[LANES], g[LANES];
  for (i64 index = k0; index < k1; index++) {
    const i64 b = index / nb, d0 = (index % nb) * LANES;
    const i64 w = a->dim - d0 < LANES ? a->dim - d0 : LANES;
    conv_consts(a, d0, w, wl, bias);
    memset(window, 0, sizeof(real) * LANES * W);
    memset(gw, 0, sizeof(real) * LANES * W);
    memset(gb, 0, sizeof gb);
    for (i64 q = 0; q < W - 1; q++) conv_shift_in(a, b, d0, w, q, window);
    for (i64 t = 0; t < L; t++) {
      conv_shift_in(a, b, d0, w, t + W - 1, window);
      load_lanes(g, a->grad_y + b * a->s_gy[0] + d0 * a->s_gy[1] + t * a->s_gy[2], a->s_gy[1], w);
      if (a->silu) {
        conv_pre(W, (const real(*)[LANES])wl, bias, (const real(*)[LANES])window, pre);
#pragma omp simd
        for (i64 j = 0; j < LANES; j++) {
          const real sg = vsigmoid(pre[j]);
          g[j] *= sg * (1 + pre[j] * (1 - sg));
        }
      }
      memcpy(gpre[t], g, sizeof g);
      for (i64 k = 0; k < W; k++)
#pragma omp simd
        for (i64 j = 0; j < LANES; j++) gw[k][j] += g[j] * window[k][j];
#pragma omp simd
      for (i64 j = 0; j < LANES; j++) gb[j] += g[j];
    }
    /* padded input position q feeds outputs t = q - k for every tap k */
    for (i64 q = 0; q < L + W - 1; q++) {
      real acc[LANES] = {0};
      for (i64 k = 0; k < W; k++) {
        const i64 t = q - k;
        if (t >= 0 && t < L)
#pragma omp simd
          for (i64 j = 0; j < LANES; j++) acc[j] += wl[k][j] * gpre[t][j];
      }
      if (q >= W - 1)
        store_lanes(a->grad_x + b * a->s_gx[0] + d0 * a->s_gx[1] + (q - (W - 1)) * a->s_gx[2],
                    a->s_gx[1], acc, w);
      else if (a->grad_initial)
        for (i64 j = 0; j < w; j++) a->grad_initial[(b * a->dim + d0 + j) * (W - 1) + q] = acc[j];
    }
    for (i64 j = 0; j < w; j++) {
      for (i64 k = 0; k < W; k++) gw_all[(d0 + j) * W + k] += gw[k][j];
      if (gb_all) gb_all[d0 + j] += gb[j];
    }
  }
  free(wl);
  free(window);
  free(gw);
  free(gpre);
}

void conv_fwd(const conv_args *a, int threads) {
  parallel_units(conv_fwd_blocks, a, a->batch * conv_blocks_per_row(a), threads);
}

void conv_bwd(const conv_args *a, int threads) {
  parallel_units(conv_bwd_blocks, a, a->batch * conv_blocks_per_row(a), threads);
}

/* One token: state (batch, dim, width) contiguous, the width most recent
 * inputs oldest first, shifted in place; x_t, y_t (batch, dim) with row
 * strides s_x[0], s_y[0]. */
static void conv_step_rows(const void *p, i64 r0, i64 r1, int thread) {
  const conv_args *a = (const conv_args *)p;
  const i64 W = a->width;
  real *state_all = (real *)a->initial;
  (void)thread;
  for (i64 r = r0; r < r1; r++) {
    const i64 b = r / a->dim, d = r % a->dim;
    real *state = state_all + r * W;
    const real *w = a->weight + d * W;
    memmove(state, state + 1, sizeof(real) * (W - 1));
    state[W - 1] = a->x[b * a->s_x[0] + d];
    real acc = a->bias ? a->bias[d] : 0;
    for (i64 k = 0; k < W; k++) acc += w[k] * state[k];
    a->y[b * a->s_y[0] + d] = a->silu ? acc * vsigmoid(acc) : acc;
  }
}

void conv_step(const conv_args *a, int threads) {
  parallel_units(conv_step_rows, a, a->batch * a->dim, threads);
}

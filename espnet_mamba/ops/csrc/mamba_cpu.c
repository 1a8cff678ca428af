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
 * Work is split over rows (batch x channel). Each call starts its own threads
 * (no pool survives the call), so the library is safe under fork, and the
 * caller chooses the count (torch.get_num_threads()). Gradients that sum over
 * rows of several threads (A, B, C, D, bias, conv weight) go to one private
 * buffer per thread; the caller adds them up.
 *
 * The state loop runs over d_state with `#pragma omp simd` (compiled with
 * -fopenmp-simd: vector code, no OpenMP runtime). exp() of the decay is our
 * own range-reduced polynomial, which the compiler vectorises; libm's expf
 * would be one scalar call per state element.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
#define MAX_THREADS 256

/* exp(x), x clamped to the normal range: x = k ln2 + r with |r| <= ln2/2, exp(r) by its
 * Taylor polynomial (error below one unit in the last place), 2^k from the
 * exponent bits. Branch-free, so a loop over it vectorises. */
static inline real vexp(real x) {
#ifdef REAL_IS_DOUBLE
  const real round_magic = 6755399441055744.0; /* 1.5 * 2^52 */
  const real ln2_hi = 6.93145751953125e-1, ln2_lo = 1.42860682030941723212e-6;
  x = x > 700.0 ? 700.0 : (x < -700.0 ? -700.0 : x);
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
  x = x > 88.0f ? 88.0f : (x < -87.0f ? -87.0f : x);
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

typedef void (*row_fn)(const void *args, i64 row_begin, i64 row_end, int thread);

typedef struct {
  row_fn fn;
  const void *args;
  i64 begin, end;
  int thread;
} job;

static void *run_job(void *p) {
  job *j = (job *)p;
  j->fn(j->args, j->begin, j->end, j->thread);
  return NULL;
}

/* rows [0, rows) in `threads` contiguous ranges; the caller's thread takes one */
static void parallel_rows(row_fn fn, const void *args, i64 rows, int threads) {
  job jobs[MAX_THREADS];
  pthread_t ids[MAX_THREADS];
  int started[MAX_THREADS];
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  if (threads > rows) threads = (int)rows;
  if (threads < 1) threads = 1;
  for (int t = 0; t < threads; t++) {
    jobs[t] = (job){fn, args, rows * t / threads, rows * (t + 1) / threads, t};
    started[t] = 0;
  }
  for (int t = 1; t < threads; t++)
    started[t] = pthread_create(&ids[t], NULL, run_job, &jobs[t]) == 0;
  run_job(&jobs[0]);
  for (int t = 1; t < threads; t++) {
    if (started[t])
      pthread_join(ids[t], NULL);
    else
      run_job(&jobs[t]); /* could not start a thread: do its rows here */
  }
}

/* ------------------------------------------------------------------- scan */

/* Strides are in elements. u, delta, z, y, grad_y, grad_u, grad_delta, grad_z:
 * (batch, dim, len) with strides [b, d, t]. B and C: time-varying
 * (batch, groups, len, n) with strides [b, g, t] and unit stride over n, or
 * time-invariant (dim, n) contiguous. A (dim, n), h0/last/grad_last/grad_h0
 * (batch, dim, n) and checkpoints (batch, dim, n_chunks, n): contiguous.
 * chunk <= MAX_CHUNK steps between checkpoints. */
typedef struct {
  const real *u, *delta, *A, *B, *C, *D, *z, *delta_bias, *h0;
  real *y, *last, *ckpt;
  /* backward only */
  const real *grad_y, *grad_last;
  real *grad_u, *grad_delta, *grad_z, *grad_h0;
  real *grad_A, *grad_B, *grad_C, *grad_D, *grad_bias; /* per-thread buffers */
  i64 batch, dim, len, nstate, groups, chunk, softplus, B_varies, C_varies;
  i64 s_u[3], s_delta[3], s_z[3], s_y[3], s_B[3], s_C[3];
  i64 s_gy[3], s_gu[3], s_gdelta[3], s_gz[3];
} scan_args;

/* One row's pointers: its u, delta, z series, its B and C and their time steps. */
typedef struct {
  const real *u, *delta, *z, *B, *C, *A;
  i64 sBt, sCt;
  real D, bias;
} scan_row;

static inline scan_row row_of(const scan_args *a, i64 r) {
  const i64 N = a->nstate, b = r / a->dim, d = r % a->dim, g = d / (a->dim / a->groups);
  scan_row w;
  w.u = a->u + b * a->s_u[0] + d * a->s_u[1];
  w.delta = a->delta + b * a->s_delta[0] + d * a->s_delta[1];
  w.z = a->z ? a->z + b * a->s_z[0] + d * a->s_z[1] : NULL;
  w.B = a->B_varies ? a->B + b * a->s_B[0] + g * a->s_B[1] : a->B + d * N;
  w.C = a->C_varies ? a->C + b * a->s_C[0] + g * a->s_C[1] : a->C + d * N;
  w.sBt = a->B_varies ? a->s_B[2] : 0;
  w.sCt = a->C_varies ? a->s_C[2] : 0;
  w.A = a->A + d * N;
  w.D = a->D ? a->D[d] : 0;
  w.bias = a->delta_bias ? a->delta_bias[d] : 0;
  return w;
}

/* The per-step scalars of steps [s, s+k) of one row, computed in vector loops
 * (softplus and silu are a few transcendental functions per step: as scalar
 * libm calls they would cost more than the whole state update). */
typedef struct {
  real u[MAX_CHUNK], dt[MAX_CHUNK], gate[MAX_CHUNK];
  real raw_sig[MAX_CHUNK], z[MAX_CHUNK], z_sig[MAX_CHUNK]; /* for the backward */
} step_scalars;

static void load_steps(const scan_args *a, const scan_row *w, i64 s, i64 k, step_scalars *st) {
  for (i64 i = 0; i < k; i++) {
    st->u[i] = w->u[(s + i) * a->s_u[2]];
    st->dt[i] = w->delta[(s + i) * a->s_delta[2]] + w->bias;
    st->z[i] = w->z ? w->z[(s + i) * a->s_z[2]] : 0;
  }
  if (a->softplus) {
#pragma omp simd
    for (i64 i = 0; i < k; i++) {
      const real raw = st->dt[i];
      st->raw_sig[i] = raw > 20 ? 1 : vsigmoid(raw); /* d softplus / d raw */
      st->dt[i] = vsoftplus(raw);
    }
  } else {
    for (i64 i = 0; i < k; i++) st->raw_sig[i] = 1;
  }
  if (w->z) {
#pragma omp simd
    for (i64 i = 0; i < k; i++) {
      st->z_sig[i] = vsigmoid(st->z[i]);
      st->gate[i] = st->z[i] * st->z_sig[i];
    }
  } else {
    for (i64 i = 0; i < k; i++) st->gate[i] = 1;
  }
}

/* h = exp(dt A) h_prev + dt u B (decays kept in `decay` if not NULL); returns C.h */
static inline real state_update(i64 N, const real *A, const real *B, const real *C, real dt,
                                real du, const real *h_prev, real *h, real *decay) {
  real acc = 0;
#pragma omp simd reduction(+ : acc)
  for (i64 n = 0; n < N; n++) {
    real x = dt * A[n];
    x = x < LOG_DECAY_FLOOR ? LOG_DECAY_FLOOR : x;
    const real dec = vexp(x);
    if (decay) decay[n] = dec;
    h[n] = dec * h_prev[n] + du * B[n];
    acc += h[n] * C[n];
  }
  return acc;
}

static void scan_fwd_rows(const void *p, i64 r0, i64 r1, int thread) {
  const scan_args *a = (const scan_args *)p;
  const i64 N = a->nstate, L = a->len, K = a->chunk, n_chunks = (L + K - 1) / K;
  real *h = malloc(sizeof(real) * N);
  step_scalars *st = malloc(sizeof(step_scalars));
  (void)thread;
  for (i64 r = r0; r < r1; r++) {
    const scan_row w = row_of(a, r);
    const i64 b = r / a->dim, d = r % a->dim;
    real *y = a->y + b * a->s_y[0] + d * a->s_y[1];
    for (i64 n = 0; n < N; n++) h[n] = a->h0 ? a->h0[r * N + n] : 0;
    for (i64 c = 0; c < n_chunks; c++) {
      const i64 s = c * K, k = s + K < L ? K : L - s;
      if (a->ckpt) memcpy(a->ckpt + (r * n_chunks + c) * N, h, sizeof(real) * N);
      load_steps(a, &w, s, k, st);
      for (i64 i = 0; i < k; i++) {
        const i64 t = s + i;
        const real dt = st->dt[i], ut = st->u[i];
        const real acc = state_update(N, w.A, w.B + t * w.sBt, w.C + t * w.sCt, dt, dt * ut, h,
                                      h, NULL);
        y[t * a->s_y[2]] = (acc + w.D * ut) * st->gate[i];
      }
    }
    if (a->last) memcpy(a->last + r * N, h, sizeof(real) * N);
  }
  free(h);
  free(st);
}

static void scan_bwd_rows(const void *p, i64 r0, i64 r1, int thread) {
  const scan_args *a = (const scan_args *)p;
  const i64 N = a->nstate, L = a->len, Dm = a->dim, G = a->groups;
  const i64 K = a->chunk, n_chunks = (L + K - 1) / K;
  /* this thread's private gradient buffers */
  real *gA_all = a->grad_A + (i64)thread * Dm * N;
  real *gD_all = a->grad_D + (i64)thread * Dm;
  real *gbias_all = a->grad_bias + (i64)thread * Dm;
  const i64 B_size = a->B_varies ? a->batch * G * L * N : Dm * N;
  const i64 C_size = a->C_varies ? a->batch * G * L * N : Dm * N;
  real *gB_all = a->grad_B + (i64)thread * B_size;
  real *gC_all = a->grad_C + (i64)thread * C_size;
  real *states = malloc(sizeof(real) * K * N); /* h[t] for the chunk's steps */
  real *decays = malloc(sizeof(real) * K * N); /* exp(delta A) */
  real *ys = malloc(sizeof(real) * K);         /* y before the silu(z) gate */
  real *gh = malloc(sizeof(real) * N);         /* dLoss/dh[t], running backwards */
  real *gA = malloc(sizeof(real) * N);
  step_scalars *st = malloc(sizeof(step_scalars));
  for (i64 r = r0; r < r1; r++) {
    const scan_row w = row_of(a, r);
    const i64 b = r / Dm, d = r % Dm, g = d / (Dm / G);
    const real *gy_in = a->grad_y + b * a->s_gy[0] + d * a->s_gy[1];
    real *gu = a->grad_u + b * a->s_gu[0] + d * a->s_gu[1];
    real *gdl = a->grad_delta + b * a->s_gdelta[0] + d * a->s_gdelta[1];
    real *gz = w.z ? a->grad_z + b * a->s_gz[0] + d * a->s_gz[1] : NULL;
    /* gradients of B and C: laid out like B and C, but contiguous */
    real *gBp = gB_all + (a->B_varies ? (b * G + g) * L * N : d * N);
    real *gCp = gC_all + (a->C_varies ? (b * G + g) * L * N : d * N);
    const i64 gB_step = a->B_varies ? N : 0, gC_step = a->C_varies ? N : 0;
    real gDd = 0, gbias = 0;
    for (i64 n = 0; n < N; n++) {
      gh[n] = a->grad_last ? a->grad_last[r * N + n] : 0;
      gA[n] = 0;
    }
    for (i64 c = n_chunks - 1; c >= 0; c--) {
      const i64 s = c * K, k = s + K < L ? K : L - s;
      const real *h_start = a->ckpt + (r * n_chunks + c) * N;
      load_steps(a, &w, s, k, st);
      for (i64 i = 0; i < k; i++) { /* the chunk's states again, from its checkpoint */
        const i64 t = s + i;
        const real *prev = i == 0 ? h_start : states + (i - 1) * N;
        ys[i] = state_update(N, w.A, w.B + t * w.sBt, w.C + t * w.sCt, st->dt[i],
                             st->dt[i] * st->u[i], prev, states + i * N, decays + i * N)
                + w.D * st->u[i];
      }
      for (i64 i = k - 1; i >= 0; i--) {
        const i64 t = s + i;
        const real dt = st->dt[i], ut = st->u[i], du = dt * ut;
        const real *Bt = w.B + t * w.sBt, *Ct = w.C + t * w.sCt, *A = w.A;
        real *gBt = gBp + t * gB_step, *gCt = gCp + t * gC_step;
        const real *cur = states + i * N, *dec = decays + i * N;
        const real *prev = i == 0 ? h_start : states + (i - 1) * N;
        const real g_out = gy_in[t * a->s_gy[2]];
        if (gz) { /* out = y * z * sigmoid(z) */
          const real sg = st->z_sig[i];
          gz[t * a->s_gz[2]] = g_out * ys[i] * sg * (1 + st->z[i] * (1 - sg));
        }
        const real gy = g_out * st->gate[i];
        gDd += gy * ut;
        real sum_AgL = 0, sum_Bgh = 0;
#pragma omp simd reduction(+ : sum_AgL, sum_Bgh)
        for (i64 n = 0; n < N; n++) {
          const real ghn = gh[n] + gy * Ct[n];
          gCt[n] += gy * cur[n];
          /* d/d(delta A) of exp(delta A) h[t-1]; a floored decay passes nothing */
          const real glog = dt * A[n] < LOG_DECAY_FLOOR ? 0 : ghn * dec[n] * prev[n];
          sum_AgL += glog * A[n];
          gA[n] += glog * dt;
          sum_Bgh += ghn * Bt[n];
          gBt[n] += ghn * du;
          gh[n] = ghn * dec[n]; /* carried to step t-1 */
        }
        gu[t * a->s_gu[2]] = gy * w.D + dt * sum_Bgh;
        const real graw = (sum_AgL + sum_Bgh * ut) * st->raw_sig[i];
        gdl[t * a->s_gdelta[2]] = graw;
        gbias += graw;
      }
    }
    if (a->grad_h0) memcpy(a->grad_h0 + r * N, gh, sizeof(real) * N);
    for (i64 n = 0; n < N; n++) gA_all[d * N + n] += gA[n];
    gD_all[d] += gDd;
    gbias_all[d] += gbias;
  }
  free(states);
  free(decays);
  free(ys);
  free(gh);
  free(gA);
  free(st);
}

void scan_fwd(const scan_args *a, int threads) {
  parallel_rows(scan_fwd_rows, a, a->batch * a->dim, threads);
}

void scan_bwd(const scan_args *a, int threads) {
  parallel_rows(scan_bwd_rows, a, a->batch * a->dim, threads);
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

static void state_step_rows(const void *p, i64 r0, i64 r1, int thread) {
  const step_args *a = (const step_args *)p;
  const i64 N = a->nstate, Dm = a->dim;
  (void)thread;
  for (i64 r = r0; r < r1; r++) {
    const i64 b = r / Dm, d = r % Dm;
    real *h = a->state + r * N;
    real dt = a->delta[b * a->s_delta + d] + (a->delta_bias ? a->delta_bias[d] : 0);
    if (a->softplus) dt = vsoftplus(dt);
    const real ut = a->u[b * a->s_u + d];
    real yt = state_update(N, a->A + d * N, a->B + b * a->s_B, a->C + b * a->s_C, dt, dt * ut,
                           h, h, NULL) + (a->D ? a->D[d] : 0) * ut;
    if (a->z) {
      const real zt = a->z[b * a->s_z + d];
      yt *= zt * vsigmoid(zt);
    }
    a->y[b * a->s_y + d] = yt;
  }
}

void state_step(const step_args *a, int threads) {
  parallel_rows(state_step_rows, a, a->batch * a->dim, threads);
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

/* x padded with its history at position p in [0, len + width - 1) */
static inline real conv_input(const conv_args *a, const real *x, const real *hist, i64 p) {
  const i64 w1 = a->width - 1;
  if (p < w1) return hist ? hist[p] : 0;
  return x[(p - w1) * a->s_x[2]];
}

static void conv_fwd_rows(const void *p, i64 r0, i64 r1, int thread) {
  const conv_args *a = (const conv_args *)p;
  const i64 W = a->width;
  (void)thread;
  for (i64 r = r0; r < r1; r++) {
    const i64 b = r / a->dim, d = r % a->dim;
    const real *x = a->x + b * a->s_x[0] + d * a->s_x[1];
    const real *hist = a->initial ? a->initial + r * (W - 1) : NULL;
    const real *w = a->weight + d * W;
    real *y = a->y + b * a->s_y[0] + d * a->s_y[1];
    const real bias = a->bias ? a->bias[d] : 0;
    for (i64 t = 0; t < a->len; t++) {
      real acc = bias;
      if (t >= W - 1) {
        const real *xt = x + (t - (W - 1)) * a->s_x[2];
        for (i64 k = 0; k < W; k++) acc += w[k] * xt[k * a->s_x[2]];
      } else {
        for (i64 k = 0; k < W; k++) acc += w[k] * conv_input(a, x, hist, t + k);
      }
      y[t * a->s_y[2]] = a->silu ? acc * vsigmoid(acc) : acc;
    }
  }
}

static void conv_bwd_rows(const void *p, i64 r0, i64 r1, int thread) {
  const conv_args *a = (const conv_args *)p;
  const i64 W = a->width, L = a->len;
  real *gw_all = a->grad_weight + (i64)thread * a->dim * W;
  real *gb_all = a->grad_bias ? a->grad_bias + (i64)thread * a->dim : NULL;
  real *gpre = malloc(sizeof(real) * (L > 0 ? L : 1)); /* dLoss / d(pre-activation) */
  for (i64 r = r0; r < r1; r++) {
    const i64 b = r / a->dim, d = r % a->dim;
    const real *x = a->x + b * a->s_x[0] + d * a->s_x[1];
    const real *hist = a->initial ? a->initial + r * (W - 1) : NULL;
    const real *w = a->weight + d * W;
    const real *gy = a->grad_y + b * a->s_gy[0] + d * a->s_gy[1];
    real *gx = a->grad_x + b * a->s_gx[0] + d * a->s_gx[1];
    const real bias = a->bias ? a->bias[d] : 0;
    real gb = 0;
    for (i64 t = 0; t < L; t++) {
      real g = gy[t * a->s_gy[2]];
      if (a->silu) {
        real pre = bias;
        for (i64 k = 0; k < W; k++) pre += w[k] * conv_input(a, x, hist, t + k);
        const real sg = vsigmoid(pre);
        g *= sg * (1 + pre * (1 - sg));
      }
      gpre[t] = g;
      gb += g;
      for (i64 k = 0; k < W; k++) gw_all[d * W + k] += g * conv_input(a, x, hist, t + k);
    }
    /* input position p feeds outputs t = p - k for every tap k */
    for (i64 p = 0; p < L + W - 1; p++) {
      real acc = 0;
      for (i64 k = 0; k < W; k++) {
        const i64 t = p - k;
        if (t >= 0 && t < L) acc += w[k] * gpre[t];
      }
      if (p >= W - 1)
        gx[(p - (W - 1)) * a->s_gx[2]] = acc;
      else if (a->grad_initial)
        a->grad_initial[r * (W - 1) + p] = acc;
    }
    if (gb_all) gb_all[d] += gb;
  }
  free(gpre);
}

void conv_fwd(const conv_args *a, int threads) {
  parallel_rows(conv_fwd_rows, a, a->batch * a->dim, threads);
}

void conv_bwd(const conv_args *a, int threads) {
  parallel_rows(conv_bwd_rows, a, a->batch * a->dim, threads);
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
  parallel_rows(conv_step_rows, a, a->batch * a->dim, threads);
}

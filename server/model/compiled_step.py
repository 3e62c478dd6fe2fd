"""One T5 decoder step for one token, compiled by numba for a CPU: every layer's
products, attention, norms and feed-forward in one call.

Why: a decoding step is a pass over the decoder's weights with one row of input. Run
as torch ops it is about 1,900 small operations a token at flan-t5-base's size, whose
dispatch costs as much as reading the weights, and torch's one-row products read
memory at half the machine's speed (fbgemm's int8 kernel about 25 GB/s where a plain
sum reads 35-60). Here each product is a loop over the weight's rows, four rows a
pass, split between threads (prange), that reads the weights once at the speed of a
sum; everything else is a few microseconds of plain loops. numba brings its own
compiler (LLVM in its wheel), so this needs nothing installed beside the Python
packages; the compiled code is cached beside this file (or in the user's cache
directory) after the first run.

`rows_product` is the same product for several input rows at once (a prompt's tokens:
the cross-attention's keys and values, fast mode's encoder feed-forward output).

Weights are as the caller gives them: float32 (exact mode, the model's own tensors, no
copy) or int8 with a float32 scale per row (fast mode). The input of every product
stays float32 (no activation is rounded to 8 bits, so T5's feed-forward outliers need no
special case). Products sum in another order than torch's, so results differ from
torch's by float32 rounding.
"""

import math

import numba
import numpy as np
from numba import njit, prange

# Feed-forward activations the step computes (transformers' names for them).
RELU, GELU_TANH, GELU = 0, 1, 2
ACTIVATIONS = {"ReLU": RELU, "NewGELUActivation": GELU_TANH, "GELUTanh": GELU_TANH,
               "PytorchGELUTanh": GELU_TANH, "FastGELUActivation": GELU_TANH, "GELUActivation": GELU}

# Sums may be reordered (vector lanes) and multiply-adds fused: float32 rounding. Not
# the flags that assume no infinities (padding masks and softmax's running maximum use
# them) nor approximate functions (exp, tanh, erf stay libm's).
REORDER = {"reassoc", "contract", "nsz", "arcp"}


def threads_start_quickly() -> bool:
    """Whether numba's threads start a parallel region in about a microsecond (its OpenMP
    or TBB layer). Without either (no libgomp, as on macOS without libomp) numba runs its
    own workqueue, about 100 us a region: a step's hundred regions then cost more than
    the torch loop, so the decoder does not use this step there."""
    one = np.ones(2, np.float32)
    product(np.ones((2, 2), np.float32), one, one, np.empty(2, np.float32))  # starts numba's threads
    return numba.threading_layer() in ("omp", "tbb")


def use_threads(count: int):
    """Run the next parallel regions on `count` of numba's threads (at most the pool's
    size, which numba fixes at start-up: asking for more raises)."""
    numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))


@njit(fastmath=REORDER, cache=True, nogil=True, inline="always")
def _row_dot(weight, scale, row, x):
    """scale[row] * (weight[row] . x), the dot product summed in vector lanes (REORDER
    lets LLVM reorder the sum); float32 whatever the weight's type."""
    total = np.float32(0.0)
    for column in range(weight.shape[1]):
        total += np.float32(weight[row, column]) * x[column]
    return total * scale[row]


# A product sums four rows in one pass over x, rows a quarter of the range apart: each x
# value loaded serves four sums, which the int8-to-float conversion (the limit once the
# weights come fast enough) would otherwise leave the vector unit waiting on. Each row
# stream stays sequential in memory: four adjacent rows at a time read memory at half
# the speed of one (measured 9 against 16 GB/s here), four streams a quarter apart at
# 1.35x one (29 against 21 GB/s, int8 weights from memory, two threads).
ROWS_TOGETHER = 4


@njit(fastmath=REORDER, cache=True, nogil=True, inline="always")
def _four_rows_dot(weight, scale, row, apart, x, out, at):
    """out[at + i * apart] = scale[r] * (weight[r] . x) for rows r = row + i * apart,
    i in 0..3: the four sums in one pass over x."""
    r1, r2, r3 = row + apart, row + 2 * apart, row + 3 * apart
    t0 = t1 = t2 = t3 = np.float32(0.0)
    for column in range(weight.shape[1]):
        v = x[column]
        t0 += np.float32(weight[row, column]) * v
        t1 += np.float32(weight[r1, column]) * v
        t2 += np.float32(weight[r2, column]) * v
        t3 += np.float32(weight[r3, column]) * v
    out[at] = t0 * scale[row]
    out[at + apart] = t1 * scale[r1]
    out[at + 2 * apart] = t2 * scale[r2]
    out[at + 3 * apart] = t3 * scale[r3]


@njit(fastmath=REORDER, cache=True, nogil=True, inline="always")
def _rows_dot(weight, scale, lo, hi, x, out, at):
    """out[at + i] = scale[lo + i] * (weight[lo + i] . x) for rows lo..hi: its four
    quarters together, then the few rows left over one by one."""
    apart = (hi - lo) // ROWS_TOGETHER
    for i in range(apart):
        _four_rows_dot(weight, scale, lo + i, apart, x, out, at + i)
    for row in range(lo + ROWS_TOGETHER * apart, hi):
        out[at + row - lo] = _row_dot(weight, scale, row, x)


@njit(parallel=True, fastmath=REORDER, cache=True, nogil=True)
def product(weight, scale, x, out):
    """out = scale * (weight @ x) for one row x: the four quarters' rows together, split
    between numba's threads."""
    rows = weight.shape[0]
    apart = rows // ROWS_TOGETHER
    for i in prange(apart):
        _four_rows_dot(weight, scale, i, apart, x, out, i)
    for row in range(ROWS_TOGETHER * apart, rows):
        out[row] = _row_dot(weight, scale, row, x)


@njit(fastmath=REORDER, cache=True, nogil=True, inline="always")
def _four_rows_two_inputs(weight, scale, row, apart, x, j, out):
    """out[j + k, r] = scale[r] * (weight[r] . x[j + k]) for k in 0, 1 and the four rows
    r = row + i * apart: eight sums sharing each weight and input value loaded."""
    r1, r2, r3 = row + apart, row + 2 * apart, row + 3 * apart
    a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = np.float32(0.0)
    for column in range(weight.shape[1]):
        u, v = x[j, column], x[j + 1, column]
        w0, w1 = np.float32(weight[row, column]), np.float32(weight[r1, column])
        w2, w3 = np.float32(weight[r2, column]), np.float32(weight[r3, column])
        a0 += w0 * u
        a1 += w1 * u
        a2 += w2 * u
        a3 += w3 * u
        b0 += w0 * v
        b1 += w1 * v
        b2 += w2 * v
        b3 += w3 * v
    out[j, row], out[j, r1], out[j, r2], out[j, r3] = a0 * scale[row], a1 * scale[r1], a2 * scale[r2], a3 * scale[r3]
    out[j + 1, row], out[j + 1, r1] = b0 * scale[row], b1 * scale[r1]
    out[j + 1, r2], out[j + 1, r3] = b2 * scale[r2], b3 * scale[r3]


@njit(parallel=True, fastmath=REORDER, cache=True, nogil=True)
def rows_product(weight, scale, x, out):
    """out[j] = scale * (weight @ x[j]) for every row of x (n, in): a prompt's tokens at
    once. Each group of four weight rows comes from memory once for all of x's rows
    (then from cache), which it takes two at a time. The prompt's cross-attention keys
    and values and the int8 encoder's feed-forward output use it: about twice as fast
    as torch's products for 24 tokens at the release's size."""
    rows, inputs = weight.shape[0], x.shape[0]
    apart = rows // ROWS_TOGETHER
    pairs = inputs // 2 * 2
    for i in prange(apart):
        for j in range(0, pairs, 2):
            _four_rows_two_inputs(weight, scale, i, apart, x, j, out)
        for j in range(pairs, inputs):
            _four_rows_dot(weight, scale, i, apart, x[j], out[j], i)
    for row in range(ROWS_TOGETHER * apart, rows):
        for j in range(inputs):
            out[j, row] = _row_dot(weight, scale, row, x[j])


@njit(fastmath=REORDER, cache=True, nogil=True)
def _rms_norm(x, weight, eps):
    """T5's norm: no mean, no bias, x divided by its root mean square."""
    variance = np.float32(0.0)
    for i in range(x.shape[0]):
        variance += x[i] * x[i]
    inverse = np.float32(1.0) / np.sqrt(variance / np.float32(x.shape[0]) + eps)
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = weight[i] * (x[i] * inverse)
    return out


@njit(fastmath=REORDER, error_model="numpy", cache=True, nogil=True)
def _attend_head(q, keys, values, count, bias, out):
    """T5 attention of one head's query over its first `count` keys: no 1/sqrt(d) scale,
    `bias[t]` added to the scores (position bias or padding mask)."""
    scores = np.empty(count, np.float32)
    largest = -np.inf
    for t in range(count):
        s = bias[t]
        for d in range(q.shape[0]):
            s += q[d] * keys[t, d]
        scores[t] = s
        largest = max(largest, s)
    total = np.float32(0.0)
    for t in range(count):
        scores[t] = np.exp(scores[t] - largest)
        total += scores[t]
    # The weighted sum of values position by position: each position's value row is
    # contiguous, so the sum runs in vector lanes (summing each dimension over positions
    # read values a row apart: 2.7x slower at 31 positions).
    for d in range(q.shape[0]):
        out[d] = np.float32(0.0)
    for t in range(count):
        for d in range(q.shape[0]):
            out[d] += scores[t] * values[t, d]
    for d in range(q.shape[0]):
        out[d] /= total


@njit(fastmath=REORDER, cache=True, nogil=True, inline="always")
def _head_rows(weight, scale, head, x, out):
    """out = one head's rows of scale * (weight @ x): rows head * d_kv .. + d_kv."""
    _rows_dot(weight, scale, head * out.shape[0], (head + 1) * out.shape[0], x, out, 0)


@njit(parallel=True, fastmath=REORDER, error_model="numpy", cache=True, nogil=True)
def _self_attention(wq, sq, wk, sk, wv, sv, x, keys, values, step, bias, out):
    """Self-attention of the token at `step`, one parallel region for every head: the
    head's q, k and v rows, its key and value written at `step` in keys/values (heads,
    max length, d_kv), then its attention over positions 0..step into `out`. Heads are
    split between threads: each thread's work needs no other thread's, so the whole
    layer's attention is one region start (about 3 us each on two threads, a hundred a
    token when every product and attention had its own)."""
    d_kv = keys.shape[2]
    for h in prange(keys.shape[0]):
        q = np.empty(d_kv, np.float32)
        _head_rows(wq, sq, h, x, q)
        _head_rows(wk, sk, h, x, keys[h, step])
        _head_rows(wv, sv, h, x, values[h, step])
        _attend_head(q, keys[h], values[h], step + 1, bias[h], out[h * d_kv : (h + 1) * d_kv])


@njit(parallel=True, fastmath=REORDER, error_model="numpy", cache=True, nogil=True)
def _cross_attention(wq, sq, x, keys, values, bias, out):
    """Cross-attention over the prompt (keys/values (heads, prompt tokens, d_kv)), each
    head's q rows and attention in one parallel region, heads split between threads."""
    d_kv = keys.shape[2]
    for h in prange(keys.shape[0]):
        q = np.empty(d_kv, np.float32)
        _head_rows(wq, sq, h, x, q)
        _attend_head(q, keys[h], values[h], keys.shape[1], bias[h], out[h * d_kv : (h + 1) * d_kv])


# Rows of the feed-forward's inner state a thread computes before activating them
# together: a run of rows LLVM can activate in vector lanes. Runs of 128 rather than 64
# keep each of a run's four row streams twice as long (the gated product 1.1x faster).
ACTIVATION_ROWS = 128


@njit(parallel=True, fastmath=REORDER, error_model="numpy", cache=True, nogil=True)
def _gated_product(weight, scale, gate_weight, gate_scale, x, activation, gated, gates, out):
    """The feed-forward's inner state: activation(weight @ x), times gate_weight @ x when
    `gated` (T5's gated GELU; `gates` is scratch of out's size), in runs of rows split
    between threads, each run's activation in vector lanes."""
    rows = weight.shape[0]
    for run in prange((rows + ACTIVATION_ROWS - 1) // ACTIVATION_ROWS):
        lo, hi = run * ACTIVATION_ROWS, min(rows, (run + 1) * ACTIVATION_ROWS)
        _rows_dot(weight, scale, lo, hi, x, out, lo)
        if activation == RELU:
            for row in range(lo, hi):
                out[row] = max(out[row], np.float32(0.0))
        elif activation == GELU_TANH:
            for row in range(lo, hi):
                out[row] = _gelu_tanh(out[row])
        else:
            for row in range(lo, hi):
                out[row] = _gelu(out[row])
        if gated:
            _rows_dot(gate_weight, gate_scale, lo, hi, x, gates, lo)
            for row in range(lo, hi):
                out[row] *= gates[row]


# exp(y) = 2**n * exp(r) with y = n*ln2 + r, |r| <= ln2/2: n a whole number, ln2 in two
# parts so that n*ln2 loses nothing (Cody and Waite's reduction), exp(r) by its Taylor
# series to r**7 (under 1e-7 relative; measured 1.3 float32 ulp at worst), 2**n added
# into the float's exponent bits.
LOG2E = np.float32(1.4426950408889634)
LN2_HI = np.float32(0.693145751953125)  # ln2's leading bits: n*LN2_HI is exact for |n| < 2**8
LN2_LO = np.float32(1.4286067653301870e-06)  # ln2 - LN2_HI


@njit(fastmath={"contract"}, error_model="numpy", cache=True, nogil=True)
def _exp(y):
    """exp(y) in plain arithmetic, which LLVM runs in vector lanes: libm's expf and
    tanhf are calls it cannot (numba has no vector math library without Intel's SVML),
    about 20 ns each, which made the feed-forward's GELU a tenth of a token's time.
    No `reassoc` here: it would let LLVM undo the two-part reduction. y is clamped to
    [-86, 88], where the result is a normal float (exp(-86) about 4e-38)."""
    y = min(max(y, np.float32(-86.0)), np.float32(88.0))
    n = np.floor(y * LOG2E + np.float32(0.5))
    r = (y - n * LN2_HI) - n * LN2_LO
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    return np.int32(np.float32(p).view(np.int32) + (np.int32(n) << np.int32(23))).view(np.float32)


@njit(fastmath=REORDER, error_model="numpy", cache=True, nogil=True)
def _gelu_tanh(x):
    """0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x**3), written as x / (1 +
    exp(-2u)) (the same function: 1 + tanh(u) = 2 / (1 + exp(-2u))): one exp, and no
    cancellation where tanh(u) is near -1."""
    u = np.float32(0.7978845608028654) * (x + np.float32(0.044715) * x * x * x)
    return x / (np.float32(1.0) + _exp(np.float32(-2.0) * u))


@njit(fastmath=REORDER, cache=True, nogil=True)
def _gelu(x):
    """The erf GELU (libm's erf: scalar, and no T5 we load uses it)."""
    return np.float32(0.5) * x * (np.float32(1.0) + np.float32(math.erf(x * np.float32(0.7071067811865476))))


@njit(cache=True, nogil=True)
def decoder_step(hidden, step, weights, scales, norms, final_norm, keys, values, position_bias,
                 cross_keys, cross_values, cross_bias, eps, activation, gated):
    """The final hidden state (normalized, before the output layer) after `hidden`, the
    embedding of the token at position `step`, passes every layer; writes that position's
    self-attention keys and values into `keys`/`values` (layers, heads, max length, d_kv).

    weights[kind][layer] and scales[kind][layer], kinds in order: q, k, v, self-attention
    output, cross-attention q, cross-attention output, feed-forward input (wi or wi_0),
    its gate's linear half (wi_1; unused unless `gated`), feed-forward output.
    norms[layer, i]: the self-attention, cross-attention and feed-forward norm weights.
    position_bias (heads, max length, max length); cross_keys/values[layer] (heads,
    prompt tokens, d_kv); cross_bias (heads, prompt tokens): 0 or a padding mask.
    Six parallel regions a layer: each attention, each output product, the feed-forward's
    two products.
    """
    context = np.empty(keys.shape[1] * keys.shape[3], np.float32)
    delta = np.empty(hidden.shape[0], np.float32)
    state = np.empty(weights[6][0].shape[0], np.float32)
    gates = np.empty_like(state)
    bias = position_bias[:, step, :]
    hidden = hidden.copy()
    for layer in range(len(weights[0])):
        x = _rms_norm(hidden, norms[layer, 0], eps)
        _self_attention(weights[0][layer], scales[0][layer], weights[1][layer], scales[1][layer], weights[2][layer],
                        scales[2][layer], x, keys[layer], values[layer], step, bias, context)
        product(weights[3][layer], scales[3][layer], context, delta)
        hidden += delta

        x = _rms_norm(hidden, norms[layer, 1], eps)
        _cross_attention(weights[4][layer], scales[4][layer], x, cross_keys[layer], cross_values[layer], cross_bias,
                         context)
        product(weights[5][layer], scales[5][layer], context, delta)
        hidden += delta

        x = _rms_norm(hidden, norms[layer, 2], eps)
        _gated_product(weights[6][layer], scales[6][layer], weights[7][layer], scales[7][layer], x, activation, gated,
                       gates, state)
        product(weights[8][layer], scales[8][layer], state, delta)
        hidden += delta
    return _rms_norm(hidden, final_norm, eps)
